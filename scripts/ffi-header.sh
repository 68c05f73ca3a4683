#!/usr/bin/env bash
# Regenerate include/etcdrs.h from ffi/ with the pinned cbindgen (ffi/build.rs) and write it.
set -euo pipefail
cd "$(dirname "$0")/.."
ETCDRS_BLESS_HEADER=1 cargo test -q -p etcdrs-ffi --test header
git diff --stat -- include/etcdrs.h
