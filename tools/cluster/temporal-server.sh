#!/usr/bin/env bash
# Finds the pinned Temporal server and its SQL tool, building both from their Go module when they are
# not cached yet (as scripts/temporal-cli.sh does for the CLI: a `go install` needs only the Go
# module proxy). Also prints where the module's schema files are, which the SQL tool applies.
#
#   tools/cluster/temporal-server.sh path      print the directory holding `server` and `temporal-sql-tool`
#   tools/cluster/temporal-server.sh schema    print the module's schema/postgresql/v12 directory
#   tools/cluster/temporal-server.sh install   make sure both binaries and the schema exist
#
# Cache: $PRELUDE_TEMPORAL_CACHE (or ~/.cache/prelude-temporal)/server-<version>/.
set -euo pipefail

version="1.29.1"
module="go.temporal.io/server"
cache_root="${PRELUDE_TEMPORAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prelude-temporal}"
cache_dir="$cache_root/server-$version"

log() { printf '[temporal-server] %s\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    log "Temporal server $version is not in $cache_dir and there is no Go toolchain to build it."
    log "Install Go >= 1.23 so this script can build it with 'go install'."
    exit 127
  fi
}

build() {
  need_go
  log "building Temporal server $version and its SQL tool with $(go version | cut -d' ' -f3) into $cache_dir (first run only, about four minutes)"
  local started=$SECONDS
  rm -rf "$cache_dir.partial"
  # Pure Go (no C toolchain); GOFLAGS cleared so a user's -mod=vendor cannot leak into a build
  # outside any module.
  GOBIN="$cache_dir.partial" CGO_ENABLED=0 GOFLAGS="" \
    go install -trimpath "$module/cmd/server@v$version" "$module/cmd/tools/sql@v$version"
  mkdir -p "$cache_dir"
  mv "$cache_dir.partial/server" "$cache_dir/server"
  mv "$cache_dir.partial/sql" "$cache_dir/temporal-sql-tool"
  rmdir "$cache_dir.partial" 2>/dev/null || true
  log "built in $((SECONDS - started)) s"
}

resolve() {
  # `go install` names the SQL tool after its package directory; an earlier build may have left it so.
  if [[ -x "$cache_dir/sql" && ! -e "$cache_dir/temporal-sql-tool" ]]; then
    mv "$cache_dir/sql" "$cache_dir/temporal-sql-tool"
  fi
  if [[ ! -x "$cache_dir/server" || ! -x "$cache_dir/temporal-sql-tool" ]]; then build; fi
  printf '%s\n' "$cache_dir"
}

# The schema ships in the module's source, which the build put in the module cache.
schema() {
  need_go
  local dir
  dir="$(go env GOMODCACHE)/$module@v$version/schema/postgresql/v12"
  if [[ ! -d "$dir" ]]; then
    GOFLAGS="" go mod download "$module@v$version"
  fi
  printf '%s\n' "$dir"
}

case "${1:-}" in
  path) resolve ;;
  schema) schema ;;
  install)
    dir=$(resolve)
    schema_dir=$(schema)
    log "ready: $dir ($("$dir/server" --version)), schema $schema_dir"
    ;;
  *)
    log "usage: $0 path|schema|install"
    exit 2
    ;;
esac
