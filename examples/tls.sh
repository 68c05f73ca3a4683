#!/usr/bin/env bash
# The README's Security commands: one member with client and peer TLS and client-cert
# auth, then etcdctl v3 and v2 with a client certificate. Run in a directory holding
# ca.pem, member.pem, member-key.pem, client.pem and client-key.pem (a member certificate
# for 127.0.0.1 with server and client use, a client certificate, both from ca.pem).
# Ports: CLIENT_PORT (2379) and PEER_PORT (2380). Needs etcdrs on PATH and etcdctl.
set -euo pipefail
C=${CLIENT_PORT:-2379}
P=${PEER_PORT:-2380}
etcdrs --name m0 --data-dir m0.etcd \
  --listen-client-urls https://127.0.0.1:$C --advertise-client-urls https://127.0.0.1:$C \
  --cert-file member.pem --key-file member-key.pem --trusted-ca-file ca.pem --client-cert-auth \
  --listen-peer-urls https://127.0.0.1:$P --initial-advertise-peer-urls https://127.0.0.1:$P \
  --initial-cluster m0=https://127.0.0.1:$P \
  --peer-cert-file member.pem --peer-key-file member-key.pem \
  --peer-trusted-ca-file ca.pem --peer-client-cert-auth 2>m0.log &
member=$!
trap 'kill $member 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:$C --cacert ca.pem --cert client.pem \
    --key client-key.pem endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done
ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:$C --cacert ca.pem --cert client.pem --key client-key.pem put k v
ETCDCTL_API=2 etcdctl --endpoints https://127.0.0.1:$C --ca-file ca.pem --cert-file client.pem --key-file client-key.pem set /v2key hello
