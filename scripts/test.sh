#!/usr/bin/env bash
# Runs every test against real services: `make test`, or scripts/test.sh
# with extra `go test` flags (e.g. -race -v), and TEST_PACKAGES=./internal/x
# for some packages only.
#
# It reuses TEST_DATABASE_URL, TEST_PGBOUNCER_URL and TEST_S3_* when they
# are set. Otherwise it uses the Postgres on 127.0.0.1:5432 (database
# flystorage_test, created if missing), and starts a PgBouncer in transaction
# mode in front of it (installing Debian's pgbouncer package if missing) and
# a throwaway MinIO, each on a free port and removed on exit. The page's
# tests need Chromium: Debian's chromium package, installed if missing,
# and axe-core from npm (scripts/axe.sh).
# TEST_REDIS_URL defaults to the Redis on 127.0.0.1:6379, started if needed.
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

# install_pkg PACKAGE WHY installs a Debian package the tests need (as root
# only), after saying which and why. A service the package brings is
# neither started by the install (a policy-rc.d refuses it meanwhile) nor
# left enabled at boot: the tests start their own servers, on free ports.
install_pkg() {
  local pkg="$1" why="$2" policy=/usr/sbin/policy-rc.d made_policy=""
  echo "make test: installing Debian's $pkg with apt-get: $why." >&2
  echo "make test: $pkg's service will not be started or enabled at boot." >&2
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# scripts/test.sh: no service starts while it installs packages.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2 || { [ -z "$made_policy" ] || rm -f "$policy"; return 1; }
  [ -z "$made_policy" ] || rm -f "$policy"
  local unit script
  for unit in $(dpkg -L "$pkg" | grep -E '^/(usr/)?lib/systemd/system/[^/]+\.(service|socket)$'); do
    deb-systemd-helper disable "$(basename "$unit")" >/dev/null 2>&1 || systemctl disable "$(basename "$unit")" >/dev/null 2>&1 || true
  done
  for script in $(dpkg -L "$pkg" | grep -E '^/etc/init\.d/[^/]+$'); do
    update-rc.d "$(basename "$script")" disable >/dev/null 2>&1 || true
  done
}

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

# The MySQL backend's tests use MariaDB on 127.0.0.1:3306: installed (as
# root) and started if missing. Each test makes and drops a database.
if [ -z "${TEST_MYSQL_URL:-}" ]; then
  export PATH="$PATH:/usr/sbin"
  if ! command -v mariadbd >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "MariaDB is not installed: apt-get install mariadb-server, or set TEST_MYSQL_URL" >&2
      exit 1
    fi
    install_pkg mariadb-server "the MySQL backend's tests run against MariaDB"
  fi
  # mariadb-admin ping succeeds once the server answers, whoever we are.
  mysql_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 --connect-timeout=2 ping >/dev/null 2>&1; }
  if ! mysql_up; then
    install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec "$(command -v mariadbd)" -- --user=mysql
    for _ in $(seq 60); do mysql_up && break; sleep 0.5; done
    mysql_up || { echo "MariaDB did not start on 127.0.0.1:3306: start it, or set TEST_MYSQL_URL" >&2; exit 1; }
  fi
  mysql_user=root
  if ! mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -u root -e "SELECT 1" >/dev/null 2>&1; then
    # A fresh Debian install lets root in through the Unix socket only:
    # make a user of our own for the test databases.
    mysql_user=flystorage_test
    mariadb -u root -e "CREATE USER IF NOT EXISTS 'flystorage_test'@'127.0.0.1';
      GRANT ALL ON \`flystorage\\_test\\_%\`.* TO 'flystorage_test'@'127.0.0.1';" || {
      echo "cannot log in to MariaDB on 127.0.0.1:3306 as root: set TEST_MYSQL_URL" >&2; exit 1; }
  fi
  export TEST_MYSQL_URL="mysql://$mysql_user@127.0.0.1:3306/?sslmode=disable"
fi

if [ -z "${TEST_PGBOUNCER_URL:-}" ]; then
  export PATH="$PATH:/usr/sbin"
  if ! command -v pgbouncer >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "pgbouncer is not installed: apt-get install pgbouncer, or set TEST_PGBOUNCER_URL" >&2
      exit 1
    fi
    install_pkg pgbouncer "the Postgres tests run the app through PgBouncer in session and transaction mode, as Managed Postgres's pooler"
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
  echo "make test: installing Debian's chromium with apt-get: the page's tests drive it headless." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi

# The page's accessibility test injects axe-core, which npm installs into
# .cache at the version scripts/axe.sh pins (Debian's npm, installed if
# missing).
if [ -z "${TEST_AXE_JS:-}" ] && ! command -v npm >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "npm is not installed: apt-get install npm, or set TEST_AXE_JS" >&2
    exit 1
  fi
  echo "installing npm..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >&2
fi
export TEST_AXE_JS="${TEST_AXE_JS:-$(scripts/axe.sh)}"

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

# MongoDB's tests run against FerretDB, which speaks MongoDB's wire protocol
# on SQLite files; tests that stop it start their own from this binary.
export TEST_FERRETDB_BIN="${TEST_FERRETDB_BIN:-$(scripts/ferretdb.sh)}"

if [ -z "${TEST_MONGODB_URI:-}" ]; then
  ferret_port="$(free_port)"
  ferret_dir="$(mktemp -d)"
  mkdir "$ferret_dir/data"
  "$TEST_FERRETDB_BIN" --listen-addr="127.0.0.1:$ferret_port" --handler=sqlite --sqlite-url="file:$ferret_dir/data/" \
    --state-dir="$ferret_dir" --debug-addr=- --telemetry=disable --log-level=warn >"$ferret_dir/ferretdb.log" 2>&1 &
  ferret_pid=$!
  cleanups+=('kill "$ferret_pid" 2>/dev/null; wait "$ferret_pid" 2>/dev/null; rm -rf "$ferret_dir"')
  for _ in $(seq 60); do
    (exec 3<>"/dev/tcp/127.0.0.1/$ferret_port") 2>/dev/null && break
    kill -0 "$ferret_pid" 2>/dev/null || { cat "$ferret_dir/ferretdb.log" >&2; exit 1; }
    sleep 0.5
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$ferret_port") 2>/dev/null || { echo "FerretDB did not start" >&2; cat "$ferret_dir/ferretdb.log" >&2; exit 1; }
  export TEST_MONGODB_URI="mongodb://127.0.0.1:$ferret_port/"
fi

# The cache's tests use TEST_REDIS_URL, else the Redis on 127.0.0.1:6379
# (started here if it is not answering), and start throwaway redis-servers
# of their own for tests that kill Redis: Debian's redis-server, installed
# if missing.
if [ -z "${TEST_REDIS_SERVER_BIN:-}" ] && ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "redis-server is not installed: apt-get install redis-server, or set TEST_REDIS_SERVER_BIN" >&2
    exit 1
  fi
  install_pkg redis-server "the cache's tests start throwaway redis-servers, some TLS-only like Upstash"
fi
if [ -z "${TEST_REDIS_URL:-}" ]; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    for _ in $(seq 40); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.25; done
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
  fi
  export TEST_REDIS_URL=redis://127.0.0.1:6379/0
fi

# TEST_PACKAGES narrows the run to some packages (default: all of them).
go test "$@" ${TEST_PACKAGES:-./...}
