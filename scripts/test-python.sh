#!/usr/bin/env bash
# Builds the Python package the way users install it (pip install ./bindings/python, here
# as a debug build sharing target/ with the workspace) into a venv, and runs its pytest
# suite: in-process members, a member process, a 3-member cluster, python-etcd's API.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(scripts/target-dir.sh)
venv=$target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install -q ./bindings/python pytest
ETCDRS_BIN="$target/debug/etcdrs" "$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests
