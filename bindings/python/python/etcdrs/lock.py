"""``etcdrs.Lock``: python-etcd's ``etcd.Lock`` API over etcdrs's lock module.

The module (/mod/v2/lock, in the core) does the locking: requests wait in order of
arrival, the holder is the oldest, and a holder that does not renew within its TTL loses
the lock. This class only translates python-etcd's calls onto it, with the lock's uuid as
the holder's value. One difference: the requests live under /_etcd/mod/lock/<name>, not
under the client's ``lock_prefix`` as python-etcd's recipe keeps them.
"""

import uuid as _uuid
from typing import Any, Optional

from .errors import EtcdKeyNotFound, EtcdWatchTimedOut


class Lock:
    """A lock named ``lock_name`` taken through ``client`` (python-etcd's etcd.Lock)."""

    def __init__(self, client: Any, lock_name: str):
        self.client = client
        self.name = lock_name
        self.path = "{}/{}".format(client.lock_prefix, lock_name)
        self._uuid = _uuid.uuid4().hex
        self._index: Optional[int] = None
        self.is_taken = False

    @property
    def uuid(self) -> str:
        """The value this lock holds it with."""
        return self._uuid

    @uuid.setter
    def uuid(self, value: str) -> None:
        """Take over a lock held under ``value`` (refused when nobody holds it so)."""
        if self.client.lock_retrieve(self.name, "value") != value:
            raise ValueError("Inexistent UUID")
        self._uuid = value
        self._index = int(self.client.lock_retrieve(self.name, "index"))
        self.is_taken = True

    @property
    def is_acquired(self) -> bool:
        """Whether this lock holds it now (asked of the cluster)."""
        if not self.is_taken:
            return False
        if self.client.lock_retrieve(self.name, "value") != self._uuid:
            self.is_taken = False
        return self.is_taken

    def acquire(self, blocking: bool = True, lock_ttl: Optional[int] = 3600,
                timeout: float = 0) -> bool:
        """Take the lock, held for ``lock_ttl`` seconds unless renewed (None: until
        released). Blocking, wait at most ``timeout`` seconds (0: no limit); otherwise
        answer at once. True once held, False when it was not free in time. Acquiring a
        lock this object holds renews it."""
        if blocking:
            wait = int(timeout) if timeout and timeout > 0 else None
        else:
            wait = 0
        try:
            self._index = self.client.lock_acquire(self.name, lock_ttl or 0, self._uuid, wait)
        except EtcdWatchTimedOut:
            self.is_taken = False
            return False
        self.is_taken = True
        return True

    def release(self) -> None:
        """Give the lock up (or withdraw the request); nothing when it is not held."""
        try:
            self.client.lock_release(self.name, value=self._uuid)
        except EtcdKeyNotFound:
            pass
        finally:
            self.is_taken = False

    @property
    def lock_key(self) -> str:
        """The key of this lock's request in the lock module."""
        if self._index is None:
            raise ValueError("No sequence present.")
        return "/_etcd/mod/lock/{}/{:020d}".format(self.name.strip("/"), self._index)

    def __enter__(self) -> "Lock":
        self.acquire(blocking=True, lock_ttl=None)
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.release()
        return False
