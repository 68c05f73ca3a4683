# Sourced by the client benchmarks (python.sh, node.sh): `serve NAME BINARY PORT` starts a
# single-member etcd or etcdrs with its data in $WORK/NAME, client URL 127.0.0.1:PORT, peer
# PORT+1 (etcd with --enable-v2), and waits until its keys API answers.
serve() { # name binary port
    local extra=()
    [ "$2" = etcd ] && extra=(--enable-v2=true)
    "$2" "${extra[@]}" --name "$1" --data-dir "$WORK/$1" \
        --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
        --listen-peer-urls "http://127.0.0.1:$(($3 + 1))" \
        --initial-advertise-peer-urls "http://127.0.0.1:$(($3 + 1))" \
        --initial-cluster "$1=http://127.0.0.1:$(($3 + 1))" >"$WORK/$1.log" 2>&1 &
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$3/v2/keys/" >/dev/null && return 0
        sleep 0.1
    done
    echo "$1 did not start" >&2
    exit 1
}
