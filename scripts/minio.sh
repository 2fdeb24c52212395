#!/usr/bin/env bash
# Prints the path of a MinIO server binary at the pinned version, building it
# from the Go module proxy on first use (about two minutes). MinIO is built
# with its own module graph, so it never enters this app's go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

# MINIO_VERSION pins the MinIO server the tests run against.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

bin="$PWD/.cache/minio-$MINIO_VERSION"
if [ ! -x "$bin/minio" ]; then
  echo "building MinIO $MINIO_VERSION into $bin (first run only; several minutes, -v lists each package as it builds)..." >&2
  mkdir -p "$bin"
  start=$SECONDS
  # A heartbeat, so a CI log shows the build is alive while the linker runs.
  ( while sleep 30; do echo "still building MinIO ($((SECONDS - start))s)..."; done ) >&2 &
  heartbeat=$!
  trap 'kill "$heartbeat" 2>/dev/null' EXIT
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install -v "github.com/minio/minio@$MINIO_VERSION" >&2
  kill "$heartbeat" 2>/dev/null
  echo "built MinIO in $((SECONDS - start))s: $bin/minio" >&2
fi
echo "$bin/minio"
