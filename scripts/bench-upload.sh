#!/usr/bin/env bash
# Uploads 512 MiB (or $1 bytes) to a throwaway MinIO twice, straight through
# the SDK and through the app's POST /api/files, and prints throughput and
# peak RSS. Fails if the app's peak RSS reaches 100 MiB: uploads stream in
# parts, so memory must not grow with the file.
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-536870912}"

work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 120); do curl -fs "$1" >/dev/null && return 0; sleep 0.25; done; echo "no answer from $1" >&2; return 1; }

minio="$(scripts/minio.sh)"
port="$(free_port)"
secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
MINIO_ROOT_USER=flystorage MINIO_ROOT_PASSWORD="$secret" MINIO_BROWSER=off \
  "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$(free_port)" "$work/minio" >"$work/minio.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/minio/health/ready"
curl -fs -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user "flystorage:$secret" "http://127.0.0.1:$port/bench" >/dev/null

export BUCKET_NAME=bench AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=flystorage AWS_SECRET_ACCESS_KEY="$secret"
# The app is built as the Dockerfile builds it (static, -trimpath -s -w)
# and copied into place, as an image installs it: the page cache can hold
# a binary the linker has just written in large folios, which the kernel
# maps whole when one page is touched, so that up to 5 MiB more of it is
# resident (one build in three here) than of the same bytes copied
# (docs/performance.md).
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/app.built" ./cmd/app
cp "$work/app.built" "$work/app"
go build -o "$work/uploadbench" ./scripts/uploadbench
app_port="$(free_port)"
DATABASE_PATH="$work/app.db" PORT="$app_port" MAX_UPLOAD_BYTES=$((size + 1)) "$work/app" >"$work/app.log" 2>&1 &
app_pid=$!
pids+=("$app_pid")
wait_for "http://127.0.0.1:$app_port/readyz"

"$work/uploadbench" -size "$size" -app "http://127.0.0.1:$app_port" -pid "$app_pid"
