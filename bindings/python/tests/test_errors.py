"""Every exception class, raised by a real condition where one can be made, each carrying
errorCode, message, cause and index."""

import pytest

import etcdrs
from etcdrs import errors


def raised(f):
    with pytest.raises(etcdrs.EtcdException) as e:
        f()
    return e.value


def test_store_errors_carry_code_cause_and_index(client):
    w = client.write("/file", "v")
    e = raised(lambda: client.get("/missing/key"))
    assert type(e) is etcdrs.EtcdKeyNotFound and isinstance(e, etcdrs.EtcdKeyError)
    assert (e.errorCode, e.message, e.cause) == (100, "Key not found", "/missing")
    assert e.index >= w.modifiedIndex
    assert str(e) == "Key not found : /missing"
    # python-etcd's payload: etcd's error JSON plus the HTTP status.
    assert e.payload == {"errorCode": 100, "message": "Key not found", "cause": "/missing",
                         "index": e.index, "status": 404}

    client.write("/d/f", "1")
    cases = [
        (etcdrs.EtcdCompareFailed, 101, lambda: client.test_and_set("/file", "x", "nope")),
        (etcdrs.EtcdNotFile, 102, lambda: client.delete("/d")),
        (etcdrs.EtcdNotDir, 104, lambda: client.write("/file/child", "x")),
        (etcdrs.EtcdAlreadyExist, 105, lambda: client.write("/file", "x", prevExist=False)),
        (etcdrs.EtcdRootReadOnly, 107, lambda: client.write("/", "x")),
        (etcdrs.EtcdDirNotEmpty, 108, lambda: client.delete("/d", dir=True)),
        (etcdrs.EtcdValueError, 202, lambda: client.write("/file", "x", ttl="soon")),
        (etcdrs.EtcdValueError, 209, lambda: client.read("/file", recursive="maybe")),
    ]
    for cls, code, make in cases:
        e = raised(make)
        assert type(e) is cls, (code, type(e))
        assert e.errorCode == code
        assert e.message == e.payload["message"]
    assert isinstance(raised(lambda: client.write("/file", "x", ttl="soon")), ValueError)
    assert isinstance(raised(lambda: client.delete("/d", dir=True)), ValueError)


def test_event_index_cleared(client):
    first = client.write("/h", "0").modifiedIndex
    for i in range(1005):
        client.write("/h", str(i))
    e = raised(lambda: client.watch("/h", index=first))
    assert type(e) is etcdrs.EtcdEventIndexCleared and e.errorCode == 401


def test_watch_timed_out_is_a_connection_failure(client):
    e = raised(lambda: client.watch("/nothing", timeout=0.1))
    assert type(e) is etcdrs.EtcdWatchTimedOut
    assert isinstance(e, etcdrs.EtcdConnectionFailed)


def test_connection_failed():
    e = raised(lambda: etcdrs.Client(host="127.0.0.1", port=1).get("/k"))
    assert type(e) is etcdrs.EtcdConnectionFailed and e.errorCode == 1002


def test_a_stopped_member(tmp_path):
    n = etcdrs.Node(name="s", data_dir=str(tmp_path / "s"))
    c = n.client()
    n.stop()
    n.stop()
    assert type(raised(lambda: c.get("/k"))) is etcdrs.EtcdConnectionFailed


def test_bad_node_config(tmp_path):
    e = raised(lambda: etcdrs.Node(name="b", data_dir=str(tmp_path / "b"), snapshot_count="many"))
    assert type(e) is etcdrs.EtcdValueError and "snapshot-count" in e.cause
    e = raised(lambda: etcdrs.Node(name="b", data_dir=str(tmp_path / "b"), no_such_flag=1))
    assert "no-such-flag" in e.cause


def test_every_code_maps_to_its_class():
    # Conditions a test cannot make on demand (an election, a recovery, auth): the table.
    for code, cls in [(110, etcdrs.EtcdInsufficientPermissions),
                      (301, etcdrs.EtcdLeaderElectionInProgress),
                      (400, etcdrs.EtcdWatcherCleared),
                      (300, etcdrs.EtcdException)]:
        e = errors.exception_for(code, {"errorCode": code, "message": "m", "cause": "c", "index": 7})
        assert type(e) is cls and (e.errorCode, e.cause, e.index) == (code, "c", 7)
    assert issubclass(etcdrs.EtcdLockExpired, etcdrs.EtcdException)
    assert issubclass(etcdrs.EtcdClusterIdChanged, etcdrs.EtcdException)


def test_codes_come_from_the_core_table():
    codes = etcdrs._native.ERROR_CODES
    assert codes["KeyNotFound"] == 100 and codes["EventIndexCleared"] == 401
    assert codes["Stopped"] == 1010
    assert errors._BY_CODE[codes["NodeExist"]] is etcdrs.EtcdAlreadyExist
    assert errors._BY_CODE[codes["Timeout"]] is etcdrs.EtcdWatchTimedOut


def test_payloads_carry_the_http_status_as_python_etcd_does(client):
    e = raised(lambda: client.get("/missing"))
    assert e.payload["status"] == 404
    client.write("/exists", "v")
    e = raised(lambda: client.write("/exists", "w", prevExist=False))
    assert e.payload["status"] == 412
