#!/usr/bin/env bash
# Checks the Julia package (bindings/julia/Etcdrs) without a Julia runtime (none can be
# installed on these machines): fatou (a Julia parser and linter, from PyPI) parses and
# lints every file; every ccall is checked against include/etcdrs.h; every public
# function's C call sequence is compared with test/c/sequences.c, which the ffi tests run
# under valgrind. The package's own test/runtests.jl needs Julia (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(scripts/target-dir.sh)
venv=$target/julia-check-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q fatou==0.24.0 pytest
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/julia/check
