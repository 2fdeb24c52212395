#!/usr/bin/env bash
# Runs every test against real services: `make test`, or scripts/test.sh
# with extra `go test` flags (e.g. -race -v).
#
# It reuses TEST_DATABASE_URL, TEST_PGBOUNCER_URL and TEST_S3_* when they
# are set. Otherwise it uses the Postgres on 127.0.0.1:5432 (database
# flystorage_test, created if missing), and starts a PgBouncer in transaction
# mode in front of it (installing Debian's pgbouncer package if missing) and
# a throwaway MinIO, each on a free port and removed on exit. The page's
# tests need Chromium: Debian's chromium package, installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian keeps initdb and pg_ctl (which throwaway test clusters need) in
# /usr/lib/postgresql/<version>/bin, off PATH.
for pgbin in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -n1); do
  export PATH="$PATH:$pgbin"
done

cleanups=()
cleanup() { for c in "${cleanups[@]}"; do eval "$c"; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

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

if [ -z "${TEST_PGBOUNCER_URL:-}" ]; then
  export PATH="$PATH:/usr/sbin"
  if ! command -v pgbouncer >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "pgbouncer is not installed: apt-get install pgbouncer, or set TEST_PGBOUNCER_URL" >&2
      exit 1
    fi
    echo "installing pgbouncer..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >&2
  fi
  # PgBouncer forwards every database name to the TEST_DATABASE_URL server,
  # in transaction pooling mode like Managed Postgres's.
  hostport="${TEST_DATABASE_URL#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%[/?]*}"
  pg_host="${hostport%:*}"; pg_port="${hostport##*:}"
  [ "$pg_port" = "$hostport" ] && pg_port=5432
  # PgBouncer logs in to Postgres with TEST_DATABASE_URL's user and
  # password; with a password it asks clients for it too.
  pg_user="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.unquote(p.username or "postgres"))' "$TEST_DATABASE_URL")"
  pg_pass="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.unquote(p.password or ""))' "$TEST_DATABASE_URL")"
  pgb_auth=trust
  [ -n "$pg_pass" ] && pgb_auth=md5
  pgb_dir="$(mktemp -d)"
  chmod 755 "$pgb_dir"
  pgb_port="$(free_port)"
  printf '"%s" "%s"\n' "${pg_user//\"/\"\"}" "${pg_pass//\"/\"\"}" >"$pgb_dir/userlist.txt"
  chmod 600 "$pgb_dir/userlist.txt"
  cat >"$pgb_dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir = $pgb_dir
auth_type = $pgb_auth
auth_file = $pgb_dir/userlist.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = $pgb_dir/pgbouncer.log
pidfile = $pgb_dir/pgbouncer.pid
INI
  as_pg=()
  [ "$(id -u)" = 0 ] && { chown -R postgres "$pgb_dir"; as_pg=(runuser -u postgres --); }
  "${as_pg[@]}" pgbouncer -d "$pgb_dir/pgbouncer.ini"
  cleanups+=('kill "$(cat "$pgb_dir/pgbouncer.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$pgb_dir"')
  for _ in $(seq 40); do pg_isready -q -h 127.0.0.1 -p "$pgb_port" && break; sleep 0.25; done
  # The same user and password as TEST_DATABASE_URL (still URL-encoded).
  userinfo="${TEST_DATABASE_URL#*://}"; userinfo="${userinfo%%@*}"
  [ "$userinfo" = "${TEST_DATABASE_URL#*://}" ] && userinfo=postgres
  export TEST_PGBOUNCER_URL="postgres://$userinfo@127.0.0.1:$pgb_port/flystorage_test?sslmode=disable"
fi

# The page's tests drive Debian's headless Chromium.
if [ -z "${CHROMIUM_BIN:-}" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "chromium is not installed: apt-get install chromium, or set CHROMIUM_BIN" >&2
    exit 1
  fi
  echo "installing chromium..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi

# Tests that stop MinIO start their own from this binary.
export TEST_MINIO_BIN="${TEST_MINIO_BIN:-$(scripts/minio.sh)}"

if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  minio="$TEST_MINIO_BIN"
  port="$(free_port)"
  console="$(free_port)"
  data="$(mktemp -d)"
  secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  MINIO_ROOT_USER=flystorage MINIO_ROOT_PASSWORD="$secret" MINIO_BROWSER=off \
    "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" "$data/store" \
    >"$data/minio.log" 2>&1 &
  minio_pid=$!
  cleanups+=('kill "$minio_pid" 2>/dev/null; wait "$minio_pid" 2>/dev/null; rm -rf "$data"')
  for _ in $(seq 60); do
    curl -fs "http://127.0.0.1:$port/minio/health/ready" >/dev/null && break
    kill -0 "$minio_pid" 2>/dev/null || { cat "$data/minio.log" >&2; exit 1; }
    sleep 0.5
  done
  curl -fs "http://127.0.0.1:$port/minio/health/ready" >/dev/null || { echo "MinIO did not start" >&2; cat "$data/minio.log" >&2; exit 1; }
  export TEST_S3_ENDPOINT="http://127.0.0.1:$port" TEST_S3_ACCESS_KEY_ID=flystorage TEST_S3_SECRET_ACCESS_KEY="$secret"
fi

go test "$@" ./...
