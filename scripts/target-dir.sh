#!/usr/bin/env bash
# Prints where cargo puts this workspace's build output: CARGO_TARGET_DIR, a cargo config's
# build.target-dir, or ./target. Scripts ask here instead of assuming ./target.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
