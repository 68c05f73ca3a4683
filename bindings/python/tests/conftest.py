"""Fixtures: an in-process member, a member started as a separate process (the etcdrs
binary), and clients of both. Every wait is bounded."""

import os
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import etcdrs

REPO = Path(__file__).resolve().parents[3]


def etcdrs_bin() -> str:
    path = os.environ.get("ETCDRS_BIN") or str(REPO / "target" / "debug" / "etcdrs")
    if not os.path.exists(path):
        pytest.fail("%s is missing: cargo build --bin etcdrs (scripts/test.sh does)" % path)
    return path


class MemberProcess:
    """An etcdrs member in its own process on ephemeral ports."""

    def __init__(self, data_dir: str):
        self.proc = subprocess.Popen(
            [etcdrs_bin(), "--data-dir", data_dir,
             "--listen-client-urls", "http://127.0.0.1:0",
             "--listen-peer-urls", "http://127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, RUST_LOG="info"))
        found = {}

        def read():
            for line in self.proc.stderr:
                if "member started" in line and "url" not in found:
                    found["url"] = re.search(r'"(http://[^"]+)"', line).group(1)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + 20
        while "url" not in found:
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                pytest.fail("the etcdrs member did not start")
            time.sleep(0.02)
        self.url = found["url"]

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def node(tmp_path):
    with etcdrs.Node(name="py", data_dir=str(tmp_path / "py")) as n:
        yield n


@pytest.fixture(scope="module")
def member(tmp_path_factory):
    m = MemberProcess(str(tmp_path_factory.mktemp("member") / "data"))
    yield m
    m.stop()


@pytest.fixture(params=["in-process", "separate-process"])
def client(request, tmp_path):
    """The same tests through a client of an in-process Node and through an HTTP client of
    a member started as its own process (each test gets a fresh member)."""
    if request.param == "in-process":
        with etcdrs.Node(name="py", data_dir=str(tmp_path / "py")) as n:
            yield n.client()
    else:
        m = MemberProcess(str(tmp_path / "proc"))
        try:
            host, port = m.url[len("http://"):].split(":")
            yield etcdrs.Client(host=host, port=int(port))
        finally:
            m.stop()


def free_ports(n):
    """n distinct ports free now, for members that must know each other's URLs before they
    start. Taken below the kernel's ephemeral range, as etcdrs_tests::free_ports does: a
    port 0 bound and released may be handed to another test's listener or outgoing
    connection before the member binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError):
        low = 32768
    span = max(1, min(10000, low - 1024))
    held = []
    for _ in range(10000):
        if len(held) == n:
            break
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", low - 1 - random.randrange(span)))
            held.append(s)
        except OSError:
            s.close()
    assert len(held) == n, "no free ports below %d" % low
    ports = [s.getsockname()[1] for s in held]
    for s in held:
        s.close()
    return ports


@pytest.fixture(scope="module")
def etcd_endpoint(tmp_path_factory):
    """(host, port) of an etcd v2 server: ETCD_ENDPOINT when set (e.g. real etcd, to run
    test_python_etcd_api.py with python-etcd), else an etcdrs member process."""
    external = os.environ.get("ETCD_ENDPOINT")
    if external:
        host, port = external.rsplit(":", 1)
        yield host, int(port)
        return
    m = MemberProcess(str(tmp_path_factory.mktemp("compat") / "data"))
    host, port = m.url[len("http://"):].split(":")
    yield host, int(port)
    m.stop()


class EtcdProcess:
    """Real etcd 3.4 (the reference) on ports of its own, for tests that run the same
    expectations against etcd and etcdrs."""

    def __init__(self, data_dir: str, extra=()):
        import shutil
        import urllib.request
        if shutil.which("etcd") is None:
            pytest.fail("real etcd is needed: apt-get install etcd-server (scripts/test.sh does)")
        client, peer = free_ports(2)
        self.url = "http://127.0.0.1:%d" % client
        peer_url = "http://127.0.0.1:%d" % peer
        self.proc = subprocess.Popen(
            ["etcd", "--name", "default", "--data-dir", data_dir,
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", "default=" + peer_url] + list(extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=1) as r:
                    if b'"etcdcluster":"3.' in r.read():
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                pytest.fail("etcd did not start")
            time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(params=["etcdrs", "etcd"])
def v3_server(request, tmp_path):
    """(host, port) of a fresh v3 server: an etcdrs member process, and real etcd 3.4, so
    that the same test states etcd's behaviour and checks etcdrs against it."""
    if request.param == "etcdrs":
        m = MemberProcess(str(tmp_path / "member"))
    else:
        m = EtcdProcess(str(tmp_path / "etcd"))
    try:
        host, port = m.url[len("http://"):].split(":")
        yield host, int(port)
    finally:
        m.stop()
