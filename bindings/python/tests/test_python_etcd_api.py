"""Code written for python-etcd, run unchanged except for its import: the same file passes
with ``import etcd`` against real etcd (ETCD_ENDPOINT=127.0.0.1:2379)."""

import threading
import time

import pytest

import etcdrs as etcd


@pytest.fixture
def client(etcd_endpoint):
    host, port = etcd_endpoint
    c = etcd.Client(host=host, port=port)
    yield c
    try:
        c.delete("/compat", recursive=True, dir=True)
    except etcd.EtcdKeyNotFound:
        pass


def test_write_and_read(client):
    client.write("/compat/message", "Hello world")
    assert client.read("/compat/message").value == "Hello world"
    assert client.get("/compat/message").value == "Hello world"
    client.set("/compat/message", "Hello etcd")
    assert client.read("/compat/message").value == "Hello etcd"
    assert "/compat/message" in client


def test_ttl_and_expiry(client):
    r = client.write("/compat/ttl", "soon gone", ttl=1)
    assert r.ttl == 1
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            client.read("/compat/ttl")
        except etcd.EtcdKeyNotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the key did not expire")


def test_in_order_keys(client):
    a = client.write("/compat/queue", "job1", append=True)
    b = client.write("/compat/queue", "job2", append=True)
    assert int(b.key.rsplit("/", 1)[1]) > int(a.key.rsplit("/", 1)[1])
    values = [child.value for child in client.read("/compat/queue", sorted=True).children]
    assert values == ["job1", "job2"]


def test_directories_and_recursive_reads(client):
    client.write("/compat/dir", None, dir=True)
    client.write("/compat/dir/a", "1")
    client.write("/compat/dir/b/c", "2")
    r = client.read("/compat/dir", recursive=True, sorted=True)
    assert r.dir
    assert [(n.key, n.value) for n in r.leaves] == [("/compat/dir/a", "1"), ("/compat/dir/b/c", "2")]
    with pytest.raises(etcd.EtcdNotFile):
        client.delete("/compat/dir")
    with pytest.raises(etcd.EtcdDirNotEmpty):
        client.delete("/compat/dir", dir=True)
    client.delete("/compat/dir", recursive=True)
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read("/compat/dir")


def test_compare_and_swap(client):
    client.write("/compat/cas", "one")
    client.test_and_set("/compat/cas", "two", "one")
    with pytest.raises(etcd.EtcdCompareFailed):
        client.test_and_set("/compat/cas", "three", "one")
    with pytest.raises(ValueError):
        client.write("/compat/cas", "x", prevValue="nope")
    with pytest.raises(etcd.EtcdAlreadyExist):
        client.write("/compat/cas", "x", prevExist=False)
    r = client.read("/compat/cas")
    r.value = "updated"
    assert client.update(r).value == "updated"


def test_delete_and_pop(client):
    client.write("/compat/pop", "value")
    assert client.pop("/compat/pop").value == "value"
    with pytest.raises(etcd.EtcdKeyNotFound) as e:
        client.delete("/compat/pop")
    assert e.value.payload["errorCode"] == 100


def test_watch(client):
    client.write("/compat/watched", "before")
    threading.Timer(0.3, lambda: client.write("/compat/watched", "after")).start()
    assert client.watch("/compat/watched", timeout=10).value == "after"
    with pytest.raises(etcd.EtcdWatchTimedOut):
        client.watch("/compat/watched", timeout=0.5)


def test_eternal_watch(client):
    first = client.write("/compat/stream", "0")
    for i in range(1, 3):
        client.write("/compat/stream", str(i))
    stream = client.eternal_watch("/compat/stream", index=first.modifiedIndex)
    assert [next(stream).value for _ in range(3)] == ["0", "1", "2"]


def test_cluster_views(client):
    assert all(m.startswith("http://") for m in client.machines)
    members = client.members
    assert len(members) == 1
    assert client.leader["id"] in members
    assert "leaderInfo" in client.stats
    assert "getsSuccess" in client.store_stats


def test_api_execute(client):
    # python-etcd's raw call: its response's status, JSON data and etcd's index header.
    r = client.api_execute(client.key_endpoint + "/compat/raw", client._MPUT,
                           params={"value": "v1"})
    assert r.status == 201
    body = __import__("json").loads(r.data.decode("utf-8"))
    assert body["action"] == "set" and body["node"]["value"] == "v1"
    assert int(r.getheader("X-Etcd-Index")) == body["node"]["modifiedIndex"]
    r = client.api_execute(client.key_endpoint + "/compat/raw", client._MPUT,
                           params={"value": "v2", "prevValue": "v1"})
    assert r.status == 200
    r = client.api_execute(client.key_endpoint + "/compat/raw", client._MGET)
    assert b'"value":"v2"' in r.data
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.api_execute(client.key_endpoint + "/compat/none", client._MGET)
    with pytest.raises(etcd.EtcdCompareFailed):
        client.api_execute(client.key_endpoint + "/compat/raw", client._MPUT,
                           params={"value": "v3", "prevValue": "nope"})
