#!/usr/bin/env bash
# Measures the app against this machine's limits, on loopback against real
# SQLite, Postgres and MinIO: `make bench`. For each path it runs the app's
# figure and, back to back, its ceiling (the app's own GET /healthz, or the
# bare driver doing the same work), and prints app, ceiling, ratio, target
# and PASS/FAIL; then the scale checks (a deep listing page with 1,000,000
# notes, the sweep over 100,000 objects). docs/performance.md has the latest
# run.
#
# It reuses TEST_DATABASE_URL (the server; the benchmark makes a database
# flystorage_bench of its own there), TEST_S3_* and TEST_MINIO_BIN when set,
# like scripts/test.sh; otherwise it uses the Postgres on 127.0.0.1:5432 and
# starts a throwaway MinIO. Tuning:
#   BENCH_DURATION=5s      each figure's duration (app and ceiling each)
#   BENCH_CONCURRENCY=16   concurrent clients
#   BENCH_UPLOAD_BYTES     upload size (1 GiB)
#   BENCH_NOTES=1000000 BENCH_OBJECTS=100000   the scale checks; 0 skips one
#   BENCH_PATHS="sqlite pg s3 litestream"   which apps' figures to run;
#                          "restore" (not among the defaults: it takes a few
#                          minutes) restores a BENCH_RESTORE_BYTES (1 GiB)
#                          replica against a bare download of its LTX files
#   BENCH_PROFILE=DIR      also save CPU and allocation profiles of the
#                          SQLite app under its POST load into DIR
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-5s}"
clients="${BENCH_CONCURRENCY:-16}"
upload_bytes="${BENCH_UPLOAD_BYTES:-1073741824}"

work="$(mktemp -d)"
cleanups=('rm -rf "$work"')
cleanup() { for ((i=${#cleanups[@]}-1; i>=0; i--)); do eval "${cleanups[i]}"; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 120); do curl -fs "$1" >/dev/null && return 0; sleep 0.25; done; echo "no answer from $1" >&2; return 1; }

# Postgres: a database of the benchmark's own on TEST_DATABASE_URL's server.
server_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/flystorage_test?sslmode=disable}"
admin_url="$(sed -E 's#(//[^/]*/)[^?]*#\1postgres#' <<<"$server_url")"
db_url="$(sed -E 's#(//[^/]*/)[^?]*#\1flystorage_bench#' <<<"$server_url")"
psql "$admin_url" -qc "DROP DATABASE IF EXISTS flystorage_bench WITH (FORCE)" -c "CREATE DATABASE flystorage_bench" >/dev/null ||
  { echo "cannot make database flystorage_bench on the server of TEST_DATABASE_URL" >&2; exit 1; }
cleanups+=('psql "$admin_url" -qc "DROP DATABASE IF EXISTS flystorage_bench WITH (FORCE)" >/dev/null 2>&1 || true')

# MinIO: TEST_S3_* if set, else a throwaway one.
if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  minio="${TEST_MINIO_BIN:-$(scripts/minio.sh)}"
  port="$(free_port)"
  secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  MINIO_ROOT_USER=flystorage MINIO_ROOT_PASSWORD="$secret" MINIO_BROWSER=off \
    "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$(free_port)" "$work/minio" >"$work/minio.log" 2>&1 &
  minio_pid=$!
  cleanups+=('kill "$minio_pid" 2>/dev/null; wait "$minio_pid" 2>/dev/null || true')
  wait_for "http://127.0.0.1:$port/minio/health/ready"
  TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_ACCESS_KEY_ID=flystorage TEST_S3_SECRET_ACCESS_KEY="$secret"
fi
export AWS_ACCESS_KEY_ID="$TEST_S3_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$TEST_S3_SECRET_ACCESS_KEY" AWS_REGION=us-east-1
bucket="flystorage-bench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
curl -fs -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$TEST_S3_ENDPOINT/$bucket" >/dev/null
cleanups+=('"$work/bench" rmbucket -s3-endpoint "$TEST_S3_ENDPOINT" -bucket "$bucket" 2>/dev/null || true')

echo "building..." >&2
# The app is built as the Dockerfile builds it (static, -trimpath -s -w)
# and copied into place, as an image installs it: the page cache can hold
# a binary the linker has just written in large folios, which the kernel
# maps whole when one page is touched, so that up to 5 MiB more of it is
# resident (one build in three here) than of the same bytes copied
# (docs/performance.md).
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/app.built" ./cmd/app
cp "$work/app.built" "$work/app"
go build -o "$work/migrate" ./cmd/migrate
go build -o "$work/bench" ./scripts/bench
DATABASE_URL="$db_url" "$work/migrate" up >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }

# start NAME VAR=VALUE...: runs the app with that environment on a free
# port, waits until it is ready, and sets NAME_url and NAME_pid.
start() {
  local name="$1"; shift
  local port metrics
  port="$(free_port)"; metrics="$(free_port)"
  mkdir -p "$work/$name"
  env -i PATH="$PATH" HOME="$work/$name" PORT="$port" METRICS_PORT="$metrics" "$@" "$work/app" >"$work/$name.log" 2>&1 &
  local pid=$!
  cleanups+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null || true")
  wait_for "http://127.0.0.1:$port/readyz" || { cat "$work/$name.log" >&2; exit 1; }
  printf -v "${name}_url" '%s' "http://127.0.0.1:$port"
  printf -v "${name}_pid" '%s' "$pid"
  printf -v "${name}_metrics" '%s' "http://127.0.0.1:$metrics"
}
start sqlite DATABASE_PATH="$work/sqlite/app.db"
# A direct connection, no pooler: the mode docs/postgres.md advises there,
# and the one the bare pgx ceilings use (pgx's default).
start pg DATABASE_URL="$db_url" DB_QUERY_EXEC_MODE=cache_statement
# The Postgres ceiling over HTTP: net/http and pgx alone (scripts/bench/barehttp.go).
"$work/bench" bare-pg-http -pg "$db_url" >"$work/bare-pg-http.url" 2>"$work/bare-pg-http.log" &
cleanups+=("kill $! 2>/dev/null; wait $! 2>/dev/null || true")
for _ in $(seq 40); do [ -s "$work/bare-pg-http.url" ] && break; sleep 0.25; done
bare_pg_http="$(cat "$work/bare-pg-http.url")"
[ -n "$bare_pg_http" ] || { cat "$work/bare-pg-http.log" >&2; exit 1; }
start s3 DATABASE_PATH="$work/s3/app.db" BUCKET_NAME="$bucket" AWS_ENDPOINT_URL_S3="$TEST_S3_ENDPOINT" \
  AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" AWS_REGION=us-east-1 \
  MAX_UPLOAD_BYTES=$((upload_bytes + 1))
# SQLite replicated to the bucket by Litestream, each under a replica of its
# own, once per durability.
s3env=(BUCKET_NAME="$bucket" AWS_ENDPOINT_URL_S3="$TEST_S3_ENDPOINT" AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
  AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" AWS_REGION=us-east-1 BACKUP_VERIFY_INTERVAL=0)
start ls DATABASE_PATH="$work/ls/app.db" "${s3env[@]}" SQLITE_REPLICA_PREFIX=bench/local SQLITE_DURABILITY=local
start lsr DATABASE_PATH="$work/lsr/app.db" "${s3env[@]}" SQLITE_REPLICA_PREFIX=bench/replicated SQLITE_DURABILITY=replicated

if [ -n "${BENCH_PROFILE:-}" ]; then
  mkdir -p "$BENCH_PROFILE"
  secs="${duration%s}"
  echo "profiling the SQLite app under POST /api/notes and GET /api/notes/{id}..." >&2
  curl -fs "$sqlite_metrics/debug/pprof/profile?seconds=$((secs * 3))" -o "$BENCH_PROFILE/cpu.pprof" &
  prof=$!
  "$work/bench" figures -sqlite-app "$sqlite_url" -d "$duration" -c "$clients" >/dev/null || true
  wait "$prof"
  curl -fs "$sqlite_metrics/debug/pprof/allocs" -o "$BENCH_PROFILE/allocs.pprof"
  cp "$work/app" "$BENCH_PROFILE/app"
  echo "go tool pprof -top $BENCH_PROFILE/app $BENCH_PROFILE/cpu.pprof" >&2
fi

echo "$(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3); $duration per figure, $clients clients; $(date -u +%FT%TZ)"
status=0
paths=" ${BENCH_PATHS:-sqlite pg s3 litestream} "
args=()
[[ "$paths" == *" sqlite "* ]] && args+=(-sqlite-app "$sqlite_url" -bare-sqlite "$work/bare.db")
[[ "$paths" == *" pg "* ]] && args+=(-pg-app "$pg_url" -pg "$db_url" -pg-bare-http "$bare_pg_http")
[[ "$paths" == *" litestream "* ]] && args+=(-sqlite-app "$sqlite_url" -litestream-app "$ls_url" -litestream-replicated-app "$lsr_url")
[[ "$paths" == *" s3 "* ]] && args+=(-s3-app "$s3_url" -s3-app-pid "$s3_pid" -s3-endpoint "$TEST_S3_ENDPOINT" -bucket "$bucket" -upload-size "$upload_bytes" -upload-dir "$work")
"$work/bench" figures -d "$duration" -c "$clients" "${args[@]}" || status=1
if [[ "$paths" == *" restore "* ]]; then
  echo "making a database of ${BENCH_RESTORE_BYTES:-1073741824} bytes and replicating it..." >&2
  mkdir -p "$work/big" "$work/restore"
  "$work/bench" bigdb -path "$work/big/app.db" -bytes "${BENCH_RESTORE_BYTES:-1073741824}"
  start big DATABASE_PATH="$work/big/app.db" "${s3env[@]}" SQLITE_REPLICA_PREFIX=bench/restore SQLITE_DURABILITY=replicated
  # A replicated write returns once every transaction before it is in the bucket.
  curl -fsS -m 600 -X POST -H 'Content-Type: application/json' -d '{"title":"last","body":"in the bucket"}' "$big_url/api/notes" >/dev/null
  # Stopped before the restore, so that its compactions do not run meanwhile;
  # its cleanup goes too (bash fails the script when the EXIT trap waits for
  # a child already waited for).
  kill "$big_pid"; wait "$big_pid" 2>/dev/null || true; unset 'cleanups[-1]'
  "$work/bench" restore -app "$work/app" -dir "$work/restore" -s3-endpoint "$TEST_S3_ENDPOINT" -bucket "$bucket" -prefix bench/restore || status=1
fi
"$work/bench" scale -dir "$work/scale" -notes "${BENCH_NOTES:-1000000}" -objects "${BENCH_OBJECTS:-100000}" || status=1
exit "$status"
