#!/usr/bin/env bash
# Runs every test of the project: unit tests, integration tests with real member processes,
# crash tests, differential tests against real etcd 3.4, and the C ABI tests (gcc, valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# The integration tests start the real binary and link C programs against libetcdrs.so/.a:
# build them first (same profile as the tests).
cargo build --workspace
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --test-threads 2
else
  cargo test --workspace --no-fail-fast -- --test-threads 2
fi
