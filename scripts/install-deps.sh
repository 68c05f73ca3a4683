#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: real etcd 3.4 and etcdctl (Debian's
# etcd-server and etcd-client) for the differential tests; gcc, valgrind and pkg-config for
# the C ABI tests; Node and npm for the Node package's tests; chromium for the dashboard's
# browser test. Idempotent.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install ${need[*]} (apt) or run as root" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
# The etcd package may start a system etcd; the tests use their own ephemeral ports either way.
command -v etcd >/dev/null && command -v etcdctl >/dev/null && command -v gcc >/dev/null \
  && command -v valgrind >/dev/null && command -v pkg-config >/dev/null \
  && command -v node >/dev/null && command -v npm >/dev/null && [ -x /usr/bin/chromium ]
