#!/usr/bin/env bash
# Runs every test of the project: unit tests, integration tests with real member processes,
# crash tests, differential tests against real etcd 3.4, the C ABI tests (gcc, valgrind), the
# Python package's pytest suite, the Node package's node --test suites and the Julia
# package's checks, and the dashboard in a real browser (chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TERM_COLOR=never
# The integration tests start the real binary and link C programs against libetcdrs.so/.a:
# build them first (same profile as the tests). The Python crate is built by pip and the
# Node addon by npm (below).
cargo build --workspace --exclude etcdrs-python --exclude etcdrs-node
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude etcdrs-python --exclude etcdrs-node --no-fail-fast \
    --test-threads 2 || status=$?
else
  cargo test --workspace --exclude etcdrs-python --exclude etcdrs-node --no-fail-fast \
    -- --test-threads 2 || status=$?
fi
# The Python package: built into a venv with pip, tested with pytest.
scripts/test-python.sh || status=$?
# The Node package: built by npm install (cargo underneath), tested with node --test.
scripts/test-node.sh || status=$?
# The Julia package: parsed, linted and checked against the C header (no Julia runtime).
scripts/test-julia.sh || status=$?
# The dashboard: chromium loads /mod/dashboard from a 3-member cluster.
scripts/test-browser.sh || status=$?
exit $status
