#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain: real etcd 3.4 and etcdctl (Debian's
# etcd-server and etcd-client) for the differential tests. Idempotent.
set -euo pipefail
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install etcd-server and etcd-client (apt) or run as root" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq etcd-server etcd-client >/dev/null
# The package may start a system etcd; the tests use their own ephemeral ports either way.
command -v etcd >/dev/null && command -v etcdctl >/dev/null
