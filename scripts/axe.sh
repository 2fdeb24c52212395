#!/usr/bin/env bash
# Prints the path of axe-core's axe.min.js at the pinned version, installing
# it with npm on first use. The page's accessibility test injects it into
# Chromium; it never enters the page or the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# AXE_VERSION pins the axe-core the accessibility test runs.
AXE_VERSION=4.11.1

dir="$PWD/.cache/axe-core-$AXE_VERSION"
js="$dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$js" ]; then
  if ! command -v npm >/dev/null; then
    echo "npm is not installed: apt-get install npm, or set TEST_AXE_JS to an axe.min.js" >&2
    exit 1
  fi
  echo "installing axe-core $AXE_VERSION into $dir (first run only)..." >&2
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$dir" "axe-core@$AXE_VERSION" >&2
fi
echo "$js"
