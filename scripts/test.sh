#!/usr/bin/env bash
# Runs every test against real services: `make test`, or scripts/test.sh
# with extra `go test` flags (e.g. -race -v).
#
# It reuses TEST_DATABASE_URL and TEST_S3_* when they are set. Otherwise it
# uses the Postgres on 127.0.0.1:5432 (database flystorage_test, created if
# missing) and starts a throwaway MinIO on a free port, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  admin="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "no Postgres on 127.0.0.1:5432: start one, or set TEST_DATABASE_URL" >&2
    exit 1
  fi
  if [ "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = 'flystorage_test'")" != 1 ]; then
    psql "$admin" -qc "CREATE DATABASE flystorage_test"
  fi
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable"
fi

if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  minio="$(scripts/minio.sh)"
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  port="$(free_port)"
  console="$(free_port)"
  data="$(mktemp -d)"
  secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  MINIO_ROOT_USER=flystorage MINIO_ROOT_PASSWORD="$secret" MINIO_BROWSER=off \
    "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" "$data/store" \
    >"$data/minio.log" 2>&1 &
  minio_pid=$!
  trap 'kill "$minio_pid" 2>/dev/null; wait "$minio_pid" 2>/dev/null; rm -rf "$data"' EXIT
  for _ in $(seq 60); do
    curl -fs "http://127.0.0.1:$port/minio/health/ready" >/dev/null && break
    kill -0 "$minio_pid" 2>/dev/null || { cat "$data/minio.log" >&2; exit 1; }
    sleep 0.5
  done
  curl -fs "http://127.0.0.1:$port/minio/health/ready" >/dev/null || { echo "MinIO did not start" >&2; cat "$data/minio.log" >&2; exit 1; }
  export TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_ACCESS_KEY_ID=flystorage TEST_S3_SECRET_ACCESS_KEY="$secret"
fi

go test "$@" ./...
