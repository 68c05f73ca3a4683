#!/usr/bin/env bash
# Runs every test of the project: unit tests, integration tests with real member processes,
# crash tests, differential tests against real etcd 3.4, the C ABI tests (gcc, valgrind), and
# the Python package's pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# The integration tests start the real binary and link C programs against libetcdrs.so/.a:
# build them first (same profile as the tests). The Python crate is built by pip (below).
cargo build --workspace --exclude etcdrs-python
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude etcdrs-python --no-fail-fast --test-threads 2 || status=$?
else
  cargo test --workspace --exclude etcdrs-python --no-fail-fast -- --test-threads 2 || status=$?
fi
# The Python package: built into a venv with pip, tested with pytest.
scripts/test-python.sh || status=$?
exit $status
