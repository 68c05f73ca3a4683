"""Members inside the Python process: one as a context manager, three forming a cluster,
and a blocking call interrupted by Ctrl-C."""

import os
import signal
import threading
import time

import pytest

import etcdrs
from conftest import free_ports


def test_a_node_is_a_context_manager_and_stop_is_idempotent(tmp_path):
    with etcdrs.Node(name="ctx", data_dir=str(tmp_path / "ctx")) as n:
        assert n.name == "ctx" and n.member_id > 0
        assert n.client_urls[0].startswith("http://127.0.0.1:")
        assert n.wait_ready(5)
        assert n.failure is None  # a running member has not failed
        n.client().set("/k", "v")
        # The same member over HTTP.
        host, port = n.client_urls[0][len("http://"):].split(":")
        assert etcdrs.Client(host=host, port=int(port)).get("/k").value == "v"
        assert etcdrs.Client(endpoints=n.client_urls).get("/k").value == "v"
    n.stop()
    # Its data survives a restart.
    with etcdrs.Node(name="ctx", data_dir=str(tmp_path / "ctx")) as again:
        assert again.client().get("/k").value == "v"


def test_three_nodes_form_a_cluster_in_one_process(tmp_path):
    ports = free_ports(3)
    initial = {"n%d" % i: "http://127.0.0.1:%d" % p for i, p in enumerate(ports)}
    nodes = [
        etcdrs.Node(name=name, data_dir=str(tmp_path / name),
                    listen_peer_urls=url, initial_advertise_peer_urls=url,
                    initial_cluster=initial, initial_cluster_token="py-cluster")
        for name, url in initial.items()
    ]
    try:
        for n in nodes:
            assert n.wait_ready(30), n.name
        w = nodes[0].client().write("/shared", "from n0")
        for n in nodes:
            r = n.client().read("/shared", quorum=True)
            assert (r.value, r.etcd_index) == ("from n0", w.etcd_index)
        members = nodes[2].client().members
        assert sorted(m["name"] for m in members.values()) == ["n0", "n1", "n2"]
        # A write through a follower, watched on another member.
        leader_id = nodes[0].client().leader["id"]
        follower = next(n for n in nodes if "%x" % n.member_id != leader_id)
        watcher = nodes[1].client()
        start = watcher.read("/").etcd_index + 1
        follower.client().write("/via-follower", "ok")
        assert watcher.watch("/via-follower", index=start, timeout=10).value == "ok"
    finally:
        for n in nodes:
            n.stop()


def test_ctrl_c_interrupts_a_blocking_watch(node):
    c = node.client()
    interrupter = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    started = time.time()
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        c.watch("/never", timeout=0)
    interrupter.join()
    assert time.time() - started < 5
    # The client still works afterwards.
    assert c.set("/after", "ok").value == "ok"
