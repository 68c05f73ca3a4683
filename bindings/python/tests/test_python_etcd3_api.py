"""python-etcd3's API, from its documented behaviour: the same tests run with ``etcdrs.v3``
against a member in this process and against a member process over gRPC, and with
python-etcd3 itself (``etcd3`` from PyPI) against real etcd 3.4, so the expectations are
etcd's and python-etcd3's."""

import hashlib
import io
import threading
import time

import pytest

import etcdrs
import etcdrs.v3

from conftest import EtcdProcess, MemberProcess


@pytest.fixture(params=["in-process", "etcdrs", "python-etcd3+etcd"])
def api(request, tmp_path):
    """(module, client): etcdrs.v3 in-process and over gRPC, python-etcd3 against etcd."""
    if request.param == "in-process":
        with etcdrs.Node(name="v3", data_dir=str(tmp_path / "v3")) as n:
            yield etcdrs.v3, n.v3_client(timeout=10)
        return
    if request.param == "etcdrs":
        server = MemberProcess(str(tmp_path / "member"))
        module = etcdrs.v3
    else:
        import etcd3  # python-etcd3, installed by scripts/test-python.sh

        server = EtcdProcess(str(tmp_path / "etcd"))
        module = etcd3
    try:
        host, port = server.url[len("http://"):].split(":")
        yield module, module.client(host=host, port=int(port), timeout=10)
    finally:
        server.stop()


def values(pairs):
    return [value for value, _ in pairs]


def test_put_get_and_metadata(api):
    etcd3, c = api
    assert c.get("missing") == (None, None)
    r = c.put("/doot/a", "hello")
    rev = r.header.revision
    assert rev > 1
    value, meta = c.get("/doot/a")
    assert value == b"hello"
    assert meta.key == b"/doot/a"
    assert meta.create_revision == rev and meta.mod_revision == rev
    assert meta.version == 1 and meta.lease_id == 0
    assert meta.response_header.revision == rev
    r = c.put("/doot/a", b"bytes \x00 too", prev_kv=True)
    assert r.prev_kv.value == b"hello"
    value, meta = c.get("/doot/a")
    assert value == b"bytes \x00 too" and meta.version == 2


def test_ranges_prefixes_and_sorting(api):
    etcd3, c = api
    for k, v in [("/r/b", "2"), ("/r/a", "1"), ("/r/c", "3"), ("/s", "x")]:
        c.put(k, v)
    assert values(c.get_prefix("/r/")) == [b"1", b"2", b"3"]
    assert values(c.get_prefix("/r/", sort_order="descend")) == [b"3", b"2", b"1"]
    assert values(c.get_prefix("/r/", sort_order="ascend", sort_target="create")) == [
        b"2", b"1", b"3"]
    assert values(c.get_prefix("/r/", keys_only=True)) == [b"", b"", b""]
    assert values(c.get_range("/r/a", "/r/c")) == [b"1", b"2"]
    assert values(c.get_all()) == [b"1", b"2", b"3", b"x"]
    assert [m.key for _, m in c.get_all()] == [b"/r/a", b"/r/b", b"/r/c", b"/s"]
    with pytest.raises(ValueError):
        c.get_prefix("/r/", sort_order="sideways")
    with pytest.raises(TypeError):
        c.get_prefix("/r/", range_end="x")


def test_deletes(api):
    etcd3, c = api
    c.put("/d/1", "a")
    c.put("/d/2", "b")
    c.put("/e", "c")
    assert c.delete("/d/1") is True
    assert c.delete("/d/1") is False
    r = c.delete("/e", prev_kv=True, return_response=True)
    assert r.deleted == 1 and r.prev_kvs[0].value == b"c"
    r = c.delete_prefix("/d/")
    assert r.deleted == 1
    assert list(c.get_all()) == []


def test_transactions(api):
    etcd3, c = api
    assert c.put_if_not_exists("/t", "1") is True
    assert c.put_if_not_exists("/t", "2") is False
    assert c.replace("/t", "1", "3") is True
    assert c.replace("/t", "1", "4") is False
    assert c.get("/t")[0] == b"3"
    ok, responses = c.transaction(
        compare=[
            c.transactions.value("/t") == "3",
            c.transactions.version("/t") > 0,
            c.transactions.create("/t") != 0,
            c.transactions.mod("/t") < 1000000,
        ],
        success=[c.transactions.put("/t", "txn"), c.transactions.get("/t")],
        failure=[c.transactions.delete("/t")],
    )
    assert ok is True
    assert responses[0].response_put.header.revision > 0
    [(value, meta)] = responses[1]
    assert value == b"txn" and meta.key == b"/t"
    ok, responses = c.transaction(
        compare=[c.transactions.value("/t") == "nope"],
        success=[],
        failure=[c.transactions.delete("/t"), c.transactions.get("/t")],
    )
    assert ok is False
    assert responses[0].response_delete_range.deleted == 1
    assert responses[1] == []


def test_leases(api):
    etcd3, c = api
    lease = c.lease(60)
    assert lease.id > 0 and lease.ttl == 60
    c.put("/l", "v", lease=lease)
    assert 55 <= lease.remaining_ttl <= 60
    assert lease.granted_ttl == 60
    assert lease.keys == [b"/l"]
    assert c.get("/l")[1].lease_id == lease.id
    [answer] = lease.refresh()
    assert answer.TTL == 60 and answer.ID == lease.id
    lease.revoke()
    assert c.get("/l") == (None, None)
    assert c.get_lease_info(lease.id).TTL == -1
    chosen = c.lease(30, lease_id=4242)
    assert chosen.id == 4242


def test_lock(api):
    etcd3, c = api
    lock = c.lock("job", ttl=30)
    assert lock.acquire(timeout=5) is True
    assert lock.is_acquired() is True
    other = c.lock("job", ttl=30)
    assert other.is_acquired() is False
    assert other.acquire(timeout=0.5) is False
    held = threading.Event()

    def wait_then_take():
        if other.acquire(timeout=10):
            held.set()

    t = threading.Thread(target=wait_then_take)
    t.start()
    time.sleep(0.3)
    assert lock.release() is True
    t.join(timeout=15)
    assert held.is_set()
    assert other.is_acquired() is True
    assert other.release() is True
    with c.lock("ctx", ttl=30) as held_lock:
        assert held_lock.is_acquired()
        held_lock.refresh()
    assert c.get("/locks/ctx") == (None, None)


def test_watches(api):
    etcd3, c = api
    events, cancel = c.watch("/w")
    got = []

    def read():
        for e in events:
            got.append(e)
            if len(got) == 2:
                return

    reader = threading.Thread(target=read)
    reader.start()
    c.put("/w", "1")
    c.delete("/w")
    reader.join(timeout=10)
    cancel()
    assert isinstance(got[0], etcd3.events.PutEvent) and got[0].value == b"1"
    assert isinstance(got[1], etcd3.events.DeleteEvent) and got[1].key == b"/w"

    # History from a revision, with the previous key-values.
    first = c.put("/h", "a").header.revision
    c.put("/h", "b")
    event = c.watch_once("/h", timeout=5, start_revision=first + 1, prev_kv=True)
    assert event.value == b"b" and event.prev_value == b"a"
    with pytest.raises(etcd3.exceptions.WatchTimedOut):
        c.watch_once("/quiet", timeout=0.3)

    # Callbacks on a prefix, cancelled by ID.
    seen = []
    watch_id = c.add_watch_prefix_callback("/cb/", seen.append)
    c.put("/cb/1", "x")
    c.put("/other", "y")
    deadline = time.time() + 10
    while not seen and time.time() < deadline:
        time.sleep(0.05)
    c.cancel_watch(watch_id)
    assert [e.key for e in seen[0].events] == [b"/cb/1"]
    assert seen[0].header.revision > 0

    # A start revision below the compaction: the callback gets RevisionCompactedError.
    now = c.put("/h", "c").header.revision
    c.compact(now)
    errors = []
    c.add_watch_callback("/h", errors.append, start_revision=first)
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        time.sleep(0.05)
    assert isinstance(errors[0], etcd3.exceptions.RevisionCompactedError)
    assert errors[0].compacted_revision == now


def test_members_status_and_maintenance(api):
    etcd3, c = api
    [member] = list(c.members)
    assert member.id > 0 and member.name and member.peer_urls and member.client_urls
    status = c.status()
    assert status.version.startswith("3.4")
    assert status.leader.id == member.id
    assert status.raft_index > 0 and status.raft_term > 0 and status.db_size > 0
    assert isinstance(c.hash(), int)
    c.defragment()
    assert list(c.list_alarms()) == []
    # A snapshot as etcdctl saves it: the store's image and etcd's SHA-256 trailer.
    c.put("/snap", "shot")
    out = io.BytesIO()
    c.snapshot(out)
    image = out.getvalue()
    assert len(image) > 32
    assert hashlib.sha256(image[:-32]).digest() == image[-32:]
    c.lease(30, lease_id=7)
    with pytest.raises(etcd3.exceptions.PreconditionFailedError):
        c.lease(30, lease_id=7)


def test_errors(api):
    etcd3, c = api
    # python-etcd3 raises grpc's own error for codes it has no class for (details() is
    # etcd's message); etcdrs.v3 raises Etcd3Exception with the code and that message.
    with pytest.raises(Exception) as e:
        c.put("/x", "1", lease=123456)
    details = e.value.details
    assert (details() if callable(details) else details) == "etcdserver: requested lease not found"
    assert c.get("/x") == (None, None)
