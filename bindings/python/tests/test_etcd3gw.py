"""etcd3gw (PyPI), a client of etcd's JSON gateway, used unchanged against an etcdrs member
and against real etcd 3.4: the same expectations hold for both."""

import threading
import time

import etcd3gw
import pytest


@pytest.fixture
def gw(v3_server):
    host, port = v3_server
    return etcd3gw.client(host=host, port=port, timeout=10)


def test_put_get_delete_and_metadata(gw):
    assert gw.put("foo", "bar") is True
    assert gw.get("foo") == [b"bar"]
    [(value, meta)] = gw.get("foo", metadata=True)
    assert value == b"bar"
    assert meta["key"] == b"foo"
    assert meta["version"] == "1"
    assert meta["create_revision"] == meta["mod_revision"]
    assert gw.get("missing") == []
    assert gw.delete("foo") is True
    assert gw.delete("foo") is False
    assert gw.get("foo") == []


def values(pairs):
    """The values of get_prefix's and get_all's (value, metadata) pairs."""
    return [value for value, _ in pairs]


def test_prefix_all_and_sorting(gw):
    for k, v in [("/p/b", "2"), ("/p/a", "1"), ("/p/c", "3"), ("/q", "x")]:
        gw.put(k, v)
    [(value, meta), _, _] = gw.get_prefix("/p/")
    assert (value, meta["key"]) == (b"1", b"/p/a")
    assert values(gw.get_prefix("/p/")) == [b"1", b"2", b"3"]
    assert values(gw.get_prefix("/p/", sort_order="descend", sort_target="key")) == [
        b"3", b"2", b"1"]
    assert values(gw.get_prefix("/p/", sort_order="ascend", sort_target="create")) == [
        b"2", b"1", b"3"]
    assert values(gw.get_all()) == [b"1", b"2", b"3", b"x"]
    assert gw.get("/p/", range_end="/p0", count_only=True) == []
    assert gw.get("/p/", range_end="/p0", limit=1) == [b"1"]
    assert gw.delete_prefix("/p/") is True
    assert gw.get_prefix("/p/") == []


def test_create_replace_and_transactions(gw):
    assert gw.create("c", "1") is True
    assert gw.create("c", "2") is False
    assert gw.get("c") == [b"1"]
    assert gw.replace("c", "1", "3") is True
    assert gw.replace("c", "1", "4") is False
    assert gw.get("c") == [b"3"]
    txn = gw.transaction({
        "compare": [{"key": "Yw==", "result": "EQUAL", "target": "VALUE", "value": "Mw=="}],
        "success": [{"request_range": {"key": "Yw=="}}],
        "failure": [],
    })
    assert txn["succeeded"] is True
    assert txn["responses"][0]["response_range"]["kvs"][0]["value"] == "Mw=="


def test_leases(gw):
    lease = gw.lease(ttl=60)
    assert lease.id > 0
    gw.put("leased", "v", lease=lease)
    assert 55 <= lease.ttl() <= 60
    assert lease.refresh() == 60
    assert lease.keys() == [b"leased"]
    assert lease.revoke() is True
    assert gw.get("leased") == []
    # A lease that is gone: no TTL in the keep-alive answer.
    assert lease.refresh() == -1


def test_lock(gw):
    lock = gw.lock(id="job", ttl=30)
    assert lock.acquire() is True
    assert lock.is_acquired() is True
    other = gw.lock(id="job", ttl=30)
    assert other.is_acquired() is False
    assert lock.release() is True
    assert lock.is_acquired() is False
    with gw.lock(id="job", ttl=30) as held:
        assert held.is_acquired() is True


def test_watch_sees_puts_and_deletes(gw):
    events, cancel = gw.watch("w")
    got = []

    def collect():
        for e in events:
            got.append(e)
            if len(got) == 2:
                break

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    # The watch is created on the server a moment after the call returns: write until it
    # has seen the first event (bounded).
    deadline = time.time() + 10
    while not got and time.time() < deadline:
        gw.put("w", "1")
        time.sleep(0.1)
    gw.delete("w")
    reader.join(timeout=10)
    cancel()
    assert got[0]["kv"]["value"] == b"1"
    assert got[-1]["type"] == "DELETE"


def test_watch_once_and_history(gw):
    gw.put("h", "1")
    [(_, meta)] = gw.get("h", metadata=True)
    gw.put("h", "2")
    event = gw.watch_once("h", timeout=5, start_revision=int(meta["mod_revision"]))
    assert event["kv"]["value"] == b"1"
    with pytest.raises(etcd3gw.exceptions.WatchTimedOut):
        gw.watch_once("nothing-happens", timeout=0.5)


def test_status_and_members(gw):
    status = gw.status()
    assert status["version"].startswith("3.4")
    assert int(status["raftIndex"]) > 0
    [member] = gw.members()
    assert member["name"] == "default"
    assert member["clientURLs"]


def test_errors(gw):
    with pytest.raises(etcd3gw.exceptions.Etcd3Exception) as e:
        gw.post(gw.get_url("/kv/range"), json={"key": "YQ==", "revision": 1000})
    assert "future revision" in str(e.value.detail_text)
