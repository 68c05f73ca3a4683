"""Every method of etcdrs.Client, through an in-process member and through HTTP to a member
running as its own process."""

import threading
import time

import pytest

import etcdrs


def test_write_read_and_result_attributes(client):
    r = client.write("/message", "Hello world")
    assert (r.action, r.key, r.value, r.dir, r.newKey) == ("set", "/message", "Hello world", False, True)
    assert r.modifiedIndex == r.createdIndex == r.etcd_index
    assert r.raft_index >= r.etcd_index
    assert r.ttl is None and r.expiration is None

    got = client.read("message")  # a key without its leading slash is fine
    assert (got.action, got.value, got.newKey) == ("get", "Hello world", False)
    assert got.modifiedIndex == r.modifiedIndex
    assert got == client.get("/message")

    again = client.set("/message", 42)  # values are sent as text
    assert (again.value, again.newKey) == ("42", False)
    assert again._prev_node.value == "Hello world"

    t = client.write("/ttl", "v", ttl=60)
    assert t.ttl == 60 and t.expiration.endswith("Z")
    assert client.read("/message", quorum=True).value == "42"


def test_conditional_writes(client):
    client.write("/k", "one")
    created = client.write("/new", "x", prevExist=False)
    assert created.action == "create" and created.newKey
    with pytest.raises(etcdrs.EtcdAlreadyExist):
        client.write("/new", "y", prevExist=False)
    assert client.write("/k", "two", prevExist=True).action == "update"
    swapped = client.test_and_set("/k", "three", "two")
    assert (swapped.action, swapped.value) == ("compareAndSwap", "three")
    with pytest.raises(etcdrs.EtcdCompareFailed):
        client.test_and_set("/k", "four", "two")
    r = client.read("/k")
    assert client.write("/k", "five", prevIndex=r.modifiedIndex).value == "five"

    # update(): write back what was read, only if unchanged since.
    r = client.read("/k")
    r.value = "six"
    assert client.update(r).value == "six"
    with pytest.raises(etcdrs.EtcdCompareFailed):
        client.update(r)  # its modifiedIndex is stale now

    # refresh(): a new TTL, same value.
    client.write("/lease", "v", ttl=5)
    refreshed = client.refresh("/lease", ttl=100)
    assert (refreshed.value, refreshed.ttl) == ("v", 100)


def test_directories_in_order_keys_and_subtrees(client):
    d = client.write("/dir", None, dir=True)
    assert d.dir and d.value is None
    with pytest.raises(etcdrs.EtcdException):
        client.write("/dir2", "value", dir=True)
    client.write("/dir/a", "1")
    client.write("/dir/sub/b", "2")
    client.write("/dir/sub/c", "3")
    q1 = client.write("/queue", "job1", append=True)
    q2 = client.write("/queue", "job2", append=True)
    assert q1.newKey and q1.key.startswith("/queue/") and q1.key < q2.key

    listing = client.read("/queue", sorted=True)
    assert [c.value for c in listing.children] == ["job1", "job2"]

    tree = client.read("/dir", recursive=True, sorted=True)
    assert tree.dir
    assert [n.key for n in tree.leaves] == ["/dir/a", "/dir/sub/b", "/dir/sub/c"]
    assert [n.key for n in tree.get_subtree()] == [
        "/dir", "/dir/a", "/dir/sub", "/dir/sub/b", "/dir/sub/c"]
    flat = client.read("/dir", sorted=True)
    assert [n.key for n in flat.leaves] == ["/dir/a", "/dir/sub"]

    assert "/dir/a" in client and "/nothing" not in client


def test_delete_and_pop(client):
    client.write("/gone", "bye")
    popped = client.pop("/gone")
    assert (popped.key, popped.value) == ("/gone", "bye")
    with pytest.raises(etcdrs.EtcdKeyNotFound):
        client.get("/gone")

    client.write("/cad", "v")
    with pytest.raises(etcdrs.EtcdCompareFailed):
        client.delete("/cad", prevValue="other")
    assert client.delete("/cad", prevValue="v").action == "compareAndDelete"
    r = client.write("/cad", "w")
    assert client.delete("/cad", prevIndex=r.modifiedIndex).action == "compareAndDelete"

    client.write("/tree/x", "1")
    with pytest.raises(etcdrs.EtcdNotFile):
        client.delete("/tree")
    with pytest.raises(etcdrs.EtcdDirNotEmpty):
        client.delete("/tree", dir=True)
    assert client.delete("/tree", recursive=True).action == "delete"
    client.write("/empty", None, dir=True)
    assert client.delete("/empty", dir=True).dir


def test_watch_from_history_and_from_another_thread(client):
    first = client.write("/w", "1")
    client.write("/w", "2")
    # From history: the event at the asked index.
    seen = client.watch("/w", index=first.modifiedIndex)
    assert (seen.value, seen.modifiedIndex) == ("1", first.modifiedIndex)

    # A watch waiting in this thread sees a write made by another.
    writer = threading.Timer(0.2, lambda: client.write("/wd/child", "3"))
    writer.start()
    try:
        event = client.watch("/wd", recursive=True, timeout=10)
    finally:
        writer.join()
    assert (event.key, event.value) == ("/wd/child", "3")

    with pytest.raises(etcdrs.EtcdWatchTimedOut):
        client.watch("/w", timeout=0.2)


def test_a_watch_in_another_thread_while_this_one_writes(client):
    results = []
    t = threading.Thread(target=lambda: results.append(client.watch("/jobs", recursive=True, timeout=10)))
    t.start()
    time.sleep(0.3)
    client.write("/jobs/1", "run")
    t.join(timeout=15)
    assert not t.is_alive()
    assert results[0].key == "/jobs/1"


def test_eternal_watch_is_an_iterator_that_misses_nothing(client):
    start = client.write("/ew", "0").modifiedIndex + 1
    for i in range(1, 4):
        client.write("/ew", str(i))
    events = client.eternal_watch("/ew", index=start)
    assert [next(events).value for _ in range(3)] == ["1", "2", "3"]
    writer = threading.Timer(0.2, lambda: client.write("/ew", "4"))
    writer.start()
    assert next(events).value == "4"
    writer.join()


def test_cluster_information(client):
    machines = client.machines
    assert machines and all(m.startswith("http://127.0.0.1:") for m in machines)
    members = client.members
    assert len(members) == 1
    (member_id, member), = members.items()
    assert member["id"] == member_id and member["clientURLs"] == machines
    assert client.leader["id"] == member_id
    assert client.stats["state"] == "StateLeader"
    assert client.leader_stats["leader"] == member_id
    client.write("/s", "v")
    assert client.store_stats["setsSuccess"] >= 1


def test_lock_and_leader_helpers(client):
    index = client.lock_acquire("job", ttl=30, value="me")
    assert client.lock_retrieve("job") == "me"
    assert client.lock_retrieve("job", field="index") == str(index)
    client.lock_renew("job", ttl=30, index=index)
    client.lock_renew("job", ttl=30, value="me")
    with pytest.raises(etcdrs.EtcdValueError) as e:
        client.lock_release("job")
    assert e.value.errorCode == 207
    with pytest.raises(etcdrs.EtcdWatchTimedOut):
        client.lock_acquire("job", ttl=30, timeout=1)
    client.lock_release("job", index=index)
    assert client.lock_retrieve("job") == ""
    assert client.lock_acquire("job", ttl=30, timeout=0) > index

    lead = client.set_leader("cluster", "a", ttl=30)
    assert client.set_leader("cluster", "a", ttl=30) == lead
    assert client.get_leader("cluster") == "a"
    client.delete_leader("cluster", "a")
    assert client.get_leader("cluster") == ""


def test_python_etcd_connection_facts_and_versions(client):
    assert client.key_endpoint == "/v2/keys"
    assert client.protocol == "http" and client.allow_redirect is True
    assert client.lock_prefix == "/_locks"
    assert client.version == "3.4.0" and client.cluster_version == "3.4.0"
    if client.base_uri is not None:  # over HTTP
        assert client.base_uri == "http://%s:%d" % (client.host, client.port)
        assert client.host == "127.0.0.1" and client.port > 0
