"""Operations per second from Python, one client, one thread: set (distinct keys, 64-byte
values) then get (the same keys); for v3 clients (python-etcd3's API) put and get. Run by
scripts/bench/python.sh; prints one JSON line per client. A measurement, not a test."""

import json
import os
import sys
import tempfile
import time

N = int(os.environ.get("OPS", "5000"))
VALUE = "x" * 64


def measure(name, client):
    rows = {"client": name}
    v3 = hasattr(client, "put")
    write = client.put if v3 else client.write
    read = client.get if v3 else client.read
    for op in ("set", "get"):
        lat = []
        start = time.perf_counter()
        for i in range(N):
            t = time.perf_counter()
            if op == "set":
                write("/bench/k%d" % i, VALUE)
            else:
                read("/bench/k%d" % i)
            lat.append(time.perf_counter() - t)
        took = time.perf_counter() - start
        lat.sort()
        rows[op] = {"ops_per_s": round(N / took),
                    "p50_us": round(lat[len(lat) // 2] * 1e6),
                    "p99_us": round(lat[int(len(lat) * 0.99)] * 1e6)}
    print(json.dumps(rows), flush=True)


def main():
    which = sys.argv[1]
    if which.endswith("in-process"):
        import etcdrs
        with tempfile.TemporaryDirectory() as d, etcdrs.Node(name="bench", data_dir=d + "/m") as n:
            measure(which, n.v3_client() if "v3" in which else n.client())
        return
    host, port = sys.argv[2].rsplit(":", 1)
    if which.startswith("python-etcd3"):
        import etcd3
        client = etcd3.client(host=host, port=int(port))
    elif which.startswith("python-etcd"):
        import etcd
        client = etcd.Client(host=host, port=int(port))
    elif which.startswith("etcdrs-v3-grpc"):
        import etcdrs.v3
        client = etcdrs.v3.client(host=host, port=int(port))
    else:
        import etcdrs
        client = etcdrs.Client(host=host, port=int(port))
    measure(which, client)


if __name__ == "__main__":
    main()
