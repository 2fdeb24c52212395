#!/usr/bin/env bash
# Prints the path of a FerretDB binary (a server speaking MongoDB's wire
# protocol, on SQLite files) at the pinned version, building it from the Go
# module proxy on first use (about a minute). FerretDB is built in a copy of
# its own module, so it never enters this app's go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

# FERRETDB_VERSION pins the FerretDB the MongoDB tests run against.
FERRETDB_VERSION=v1.24.2

bin="$PWD/.cache/ferretdb-$FERRETDB_VERSION"
if [ ! -x "$bin/ferretdb" ]; then
  echo "building FerretDB $FERRETDB_VERSION into $bin (first run only)..." >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # Downloaded from outside this module, so that go.sum is left alone.
  src="$(cd "$tmp" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  work="$tmp/src"
  cp -R "$src/." "$work"
  chmod -R u+w "$work"
  # `go install` leaves build/version/version.txt empty, and the binary
  # then panics at start: write the version the way FerretDB's build does.
  echo "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  mkdir -p "$bin"
  (cd "$work" && GOFLAGS=-buildvcs=false go build -o "$bin/ferretdb" ./cmd/ferretdb) >&2
fi
echo "$bin/ferretdb"
