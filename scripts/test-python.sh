#!/usr/bin/env bash
# Builds the Python package the way users install it (pip install ./bindings/python, here
# as a debug build sharing cargo's target dir with the workspace) into a venv, and runs its
# pytest suite: in-process members, a member process, a 3-member cluster, python-etcd's API.
# etcd3gw (a client of the v3 JSON gateway) runs against etcdrs and real etcd alike, and
# python-etcd3 0.12.0 itself against real etcd states the expectations that etcdrs.v3
# meets. (python-etcd3's generated protobuf modules need the pure-Python protobuf runtime,
# and its Lock needs tenacity's older wait() signature.)
# Then python-etcd 0.4.5's own integration suite (its sdist's tests/integration/
# test_simple.py, which starts 3-member clusters as `etcd -name ...` from PATH) runs with
# the etcdrs binary as `etcd`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(scripts/target-dir.sh)
venv=$target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/pip" install -q ./bindings/python pytest \
  python-etcd==0.4.5 pyopenssl etcd3gw==2.7.0 etcd3==0.12.0 tenacity==6.3.1 \
  prometheus-client==0.21.1
status=0
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python ETCDRS_BIN="$target/debug/etcdrs" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
  bindings/python/tests || status=$?

# python-etcd's integration suite. It imports nose only for nose.tools.nottest, and nose
# does not run on current Pythons: a two-line stand-in takes its place. Its clusters use
# fixed ports (6001-6003, 8001-8003) on 127.0.0.1, as written upstream.
suite=$target/python-etcd-suite
if [ ! -d "$suite/python-etcd-0.4.5" ]; then
  mkdir -p "$suite"
  "$venv/bin/pip" download -q --no-deps --no-binary :all: python-etcd==0.4.5 -d "$suite"
  tar -xzf "$suite/python-etcd-0.4.5.tar.gz" -C "$suite"
fi
mkdir -p "$suite/shim/nose" "$suite/bin"
: >"$suite/shim/nose/__init__.py"
printf 'def nottest(f):\n    f.__test__ = False\n    return f\n' >"$suite/shim/nose/tools.py"
ln -sf "$target/debug/etcdrs" "$suite/bin/etcd"
(cd "$suite/python-etcd-0.4.5/src" &&
  PATH="$suite/bin:$PATH" PYTHONPATH="$suite/shim" "$venv/bin/python" -m pytest -q \
    -p no:cacheprovider -W ignore::DeprecationWarning etcd/tests/integration/test_simple.py) ||
  status=$?
exit $status
