#!/usr/bin/env bash
# Finds the pinned Temporal CLI, building it from its Go module when it is nowhere to be found.
# The SDK's own server download needs the internet; a `go install` only needs the Go module proxy.
#
#   scripts/temporal-cli.sh path        print the binary's path (installing it if needed)
#   scripts/temporal-cli.sh install     make sure the binary exists
#   scripts/temporal-cli.sh [args...]   run the binary with args (e.g. `server start-dev`)
#
# Lookup order: $TEMPORAL_CLI_PATH, the cache ($PRELUDE_TEMPORAL_CACHE or ~/.cache/prelude-temporal),
# `temporal` on PATH at the pinned version, then `go install` into the cache.
set -euo pipefail

version="1.5.1"
cache_root="${PRELUDE_TEMPORAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prelude-temporal}"
cache_dir="$cache_root/temporal-$version"
cached_bin="$cache_dir/temporal"

log() { printf '[temporal-cli] %s\n' "$*" >&2; }

has_pinned_version() {
  "$1" --version 2>/dev/null | grep -q "version $version"
}

build_with_go() {
  if ! command -v go >/dev/null 2>&1; then
    log "no Temporal CLI $version found and no Go toolchain to build one."
    log "Install the Temporal CLI (https://docs.temporal.io/cli#install) and set TEMPORAL_CLI_PATH,"
    log "or install Go >= 1.23 so this script can build it with 'go install'."
    exit 127
  fi
  log "building Temporal CLI $version with $(go version | cut -d' ' -f3) into $cache_dir (first run only, a few minutes)"
  mkdir -p "$cache_dir"
  local started=$SECONDS
  # Pure-Go build (SQLite is modernc.org/sqlite), so no C toolchain is needed; GOFLAGS is cleared so a
  # user's -mod=vendor or similar cannot leak into a build that happens outside any module.
  GOBIN="$cache_dir.partial" CGO_ENABLED=0 GOFLAGS="" \
    go install -trimpath \
      -ldflags "-X github.com/temporalio/cli/temporalcli.Version=$version" \
      "github.com/temporalio/cli/cmd/temporal@v$version"
  mv "$cache_dir.partial/temporal" "$cached_bin"
  rmdir "$cache_dir.partial" 2>/dev/null || true
  log "built in $((SECONDS - started)) s"
}

resolve() {
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
    if [[ ! -x "$TEMPORAL_CLI_PATH" ]]; then
      log "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file"
      exit 2
    fi
    printf '%s\n' "$TEMPORAL_CLI_PATH"
    return
  fi
  if [[ -x "$cached_bin" ]]; then
    printf '%s\n' "$cached_bin"
    return
  fi
  local on_path
  if on_path=$(command -v temporal 2>/dev/null) && has_pinned_version "$on_path"; then
    printf '%s\n' "$on_path"
    return
  fi
  build_with_go
  printf '%s\n' "$cached_bin"
}

case "${1:-}" in
  path) resolve ;;
  install) bin=$(resolve); log "ready: $bin ($("$bin" --version))" ;;
  *) bin=$(resolve); exec "$bin" "$@" ;;
esac
