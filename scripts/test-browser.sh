#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium (installed by install-deps.sh), driven
# by playwright-core from npm, loads /mod/dashboard from a 3-member cluster of etcdrs
# processes and checks what it renders. The screenshot it takes is kept in
# <target>/dashboard/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(scripts/target-dir.sh)
(cd tests/browser && npm install --no-audit --no-fund --silent)
ETCDRS_BIN="$target/debug/etcdrs" SCREENSHOT_DIR="$target/dashboard" CHROMIUM=/usr/bin/chromium \
  node --test --test-concurrency=1 tests/browser/
