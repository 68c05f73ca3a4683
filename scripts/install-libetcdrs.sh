#!/usr/bin/env bash
# Build libetcdrs and install it to a prefix: lib/libetcdrs.{so,a}, include/etcdrs.h and
# lib/pkgconfig/etcdrs.pc.
#   scripts/install-libetcdrs.sh PREFIX [--debug] [--no-build]
# Then: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig gcc app.c $(pkg-config --cflags --libs etcdrs)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=""
profile=release
build=1
for a in "$@"; do
  case "$a" in
    --debug) profile=debug ;;
    --no-build) build=0 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) prefix="$a" ;;
  esac
done
if [ -z "$prefix" ]; then
  echo "usage: $0 PREFIX [--debug] [--no-build]" >&2
  exit 2
fi
if [ "$build" = 1 ]; then
  if [ "$profile" = release ]; then cargo build --release -p etcdrs-ffi; else cargo build -p etcdrs-ffi; fi
fi
target="$(scripts/target-dir.sh)/$profile"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$target/libetcdrs.so" "$prefix/lib/"
install -m 0644 "$target/libetcdrs.a" "$prefix/lib/"
install -m 0644 include/etcdrs.h "$prefix/include/"
prefix_abs=$(cd "$prefix" && pwd)
sed -e "s|@PREFIX@|$prefix_abs|" -e "s|@VERSION@|$version|" ffi/etcdrs.pc.in \
  > "$prefix/lib/pkgconfig/etcdrs.pc"
echo "installed libetcdrs $version to $prefix_abs"
