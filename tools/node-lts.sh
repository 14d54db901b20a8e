#!/usr/bin/env bash
# Prints the bin/ directory of the current Node.js LTS, fetched once from the npm registry (the
# package node-linux-<arch>) and kept in ~/.cache/prelude-temporal/node/<version>, outside the repo.
# CI puts it first on PATH to run the tests on the LTS as well as on the oldest supported Node.
#   NODE_LTS_MAJOR   the LTS line (default 24)
set -euo pipefail

major=${NODE_LTS_MAJOR:-24}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-lts: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
package="node-linux-$arch"
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/prelude-temporal/node

# The newest release of the line; offline, the newest one cached.
version=$(npm view "$package@$major" version --json 2>/dev/null |
  node -e '
    const key = (v) => v.split(".").map(Number);
    const newer = (a, b) => key(a).reduce((d, x, i) => d || x - key(b)[i], 0);
    const all = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8") || "[]"));
    console.log(all.sort(newer).pop() ?? "");' ||
  true)
if [ -z "$version" ]; then
  version=$(ls "$cache_root" 2>/dev/null | grep "^$major\." | sort -V | tail -1 || true)
  [ -n "$version" ] || { echo "node-lts: cannot reach the npm registry and no Node $major is cached" >&2; exit 1; }
fi

dir="$cache_root/$version"
if [ ! -x "$dir/bin/node" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "node-lts: fetching $package@$version into $dir" >&2
  (cd "$work" && npm pack "$package@$version" --silent >/dev/null && tar xzf "$package-$version.tgz" package/bin/node)
  mkdir -p "$dir/bin"
  mv "$work/package/bin/node" "$dir/bin/node"
fi
echo "$dir/bin"
