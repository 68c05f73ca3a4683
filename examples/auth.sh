#!/usr/bin/env bash
# The README's users and roles, with etcd's own etcdctl, against a running member whose
# auth is not yet enabled (default 127.0.0.1:2379). The two refused commands must print
# etcd's errors. Stops at the first command that does otherwise.
set -euo pipefail
export ETCDCTL_API=3
E="etcdctl --endpoints ${1:-127.0.0.1:2379}"
refused() {
  local want=$1
  shift
  if out=$("$@" 2>&1); then
    echo "expected a refusal from: $*" >&2
    exit 1
  fi
  grep -q "$want" <<<"$out" || { echo "$*: $out" >&2; exit 1; }
  echo "Error: $want"
}
$E user add root --new-user-password=rootpw
$E auth enable
$E --user root:rootpw user add alice --new-user-password=alicepw
$E --user root:rootpw role add reader
$E --user root:rootpw role grant-permission reader read /pub/ --prefix=true
$E --user root:rootpw user grant-role alice reader
$E --user root:rootpw put /pub/x hello
$E --user alice:alicepw get /pub/x
refused "etcdserver: permission denied" $E --user alice:alicepw put /pub/x no
refused "etcdserver: user name is empty" $E get /pub/x
