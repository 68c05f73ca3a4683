#!/usr/bin/env bash
# The v3 API through etcd's JSON gateway with curl, against a running member (default
# http://127.0.0.1:2379). Keys and values travel as base64: foo = Zm9v, bar = YmFy,
# baz = YmF6. Stops at the first request that fails.
set -euo pipefail
E=${1:-http://127.0.0.1:2379}
run() { echo "\$ curl $*"; curl -sf "$@"; echo; }
run -L "$E/v3/kv/put" -X POST -d '{"key": "Zm9v", "value": "YmFy"}'
run -L "$E/v3/kv/range" -X POST -d '{"key": "Zm9v"}'
run -L "$E/v3/kv/range" -X POST -d '{"key": "AA==", "range_end": "AA==", "keys_only": true}'
run -L "$E/v3/kv/txn" -X POST -d '{"compare": [{"key": "Zm9v", "target": "VALUE", "result": "EQUAL", "value": "YmFy"}], "success": [{"request_put": {"key": "Zm9v", "value": "YmF6"}}]}'
run -L "$E/v3/lease/grant" -X POST -d '{"TTL": 30}'
# A watch answers one JSON object per line for as long as it runs (here: 2 s).
curl -s -N -m 2 "$E/v3/watch" -X POST -d '{"create_request": {"key": "Zm9v"}}' &
sleep 0.5
run -L "$E/v3/kv/deleterange" -X POST -d '{"key": "Zm9v", "prev_kv": true}'
wait || true
run -L "$E/v3/maintenance/status" -X POST
