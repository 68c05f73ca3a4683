"""Operations per second from Python, one client, one thread: set (distinct keys, 64-byte
values) then get (the same keys). Run by scripts/bench/python.sh; prints one JSON line per
client. A measurement, not a test."""

import json
import os
import sys
import tempfile
import time

N = int(os.environ.get("OPS", "5000"))
VALUE = "x" * 64


def measure(name, client):
    rows = {"client": name}
    for op in ("set", "get"):
        lat = []
        start = time.perf_counter()
        for i in range(N):
            t = time.perf_counter()
            if op == "set":
                client.write("/bench/k%d" % i, VALUE)
            else:
                client.read("/bench/k%d" % i)
            lat.append(time.perf_counter() - t)
        took = time.perf_counter() - start
        lat.sort()
        rows[op] = {"ops_per_s": round(N / took),
                    "p50_us": round(lat[len(lat) // 2] * 1e6),
                    "p99_us": round(lat[int(len(lat) * 0.99)] * 1e6)}
    print(json.dumps(rows), flush=True)


def main():
    which = sys.argv[1]
    if which == "etcdrs-in-process":
        import etcdrs
        with tempfile.TemporaryDirectory() as d, etcdrs.Node(name="bench", data_dir=d + "/m") as n:
            measure(which, n.client())
    elif which.startswith("python-etcd"):
        import etcd
        host, port = sys.argv[2].rsplit(":", 1)
        measure(which, etcd.Client(host=host, port=int(port)))
    elif which.startswith("etcdrs-http"):
        import etcdrs
        host, port = sys.argv[2].rsplit(":", 1)
        measure(which, etcdrs.Client(host=host, port=int(port)))


if __name__ == "__main__":
    main()
