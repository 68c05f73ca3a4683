"""etcdrs.Lock: python-etcd's etcd.Lock API (acquire, release, is_acquired, uuid, a context
manager) over the lock module, in-process and over HTTP."""

import threading
import time

import pytest

import etcdrs


def test_one_holder_at_a_time_and_release_passes_it_on(client):
    first = etcdrs.Lock(client, "jobs")
    second = etcdrs.Lock(client, "jobs")
    assert first.acquire(lock_ttl=30)
    assert first.is_acquired and first.is_taken
    assert first.lock_key.startswith("/_etcd/mod/lock/jobs/")
    # Held by another: a non-blocking acquire answers at once, and so does a bounded one.
    assert second.acquire(blocking=False) is False
    assert second.acquire(timeout=1) is False
    assert not second.is_acquired
    # Acquiring again renews.
    assert first.acquire(lock_ttl=30)

    got = []
    waiter = threading.Thread(target=lambda: got.append(second.acquire(timeout=10)))
    waiter.start()
    time.sleep(0.3)
    first.release()
    waiter.join(15)
    assert got == [True]
    assert second.is_acquired and not first.is_acquired
    second.release()
    assert not second.is_acquired
    first.release()  # not held: nothing happens


def test_context_manager_and_taking_over_by_uuid(client):
    with etcdrs.Lock(client, "ctx") as held:
        assert held.is_acquired
        other = etcdrs.Lock(client, "ctx")
        other.uuid = held.uuid  # the same holder, from another object
        assert other.is_acquired
        with pytest.raises(ValueError):
            etcdrs.Lock(client, "ctx").uuid = "not-a-holder"
    assert client.lock_retrieve("ctx") == ""
