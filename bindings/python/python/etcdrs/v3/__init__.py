"""etcdrs.v3: python-etcd3's API (``etcd3`` on PyPI) on etcdrs's v3 client, so that code
written for it runs with ``import etcdrs.v3 as etcd3``: against any etcd v3 cluster over
gRPC (``client(host, port)``), or against a member in this process with no network
(``etcdrs.Node(...).v3_client()``). Calls release the GIL.

This layer translates: python-etcd3's calls become etcd's v3 requests (as the gateway's
JSON, which the native module hands to the same client calls the Rust API has), and the
answers come back as objects with the protobuf messages' field names and defaults.
"""

import base64
import json
import queue
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from .. import _native
from . import events, exceptions
from .events import DeleteEvent, Event, PutEvent  # noqa: F401  (python-etcd3 exports)
from .exceptions import Etcd3Exception

__all__ = [
    "client",
    "Etcd3Client",
    "Etcd3Exception",
    "Transactions",
    "KVMetadata",
    "Status",
    "Lease",
    "Lock",
    "Member",
    "events",
    "exceptions",
]

Bytesish = Union[str, bytes]

# Fields whose JSON text is base64 bytes, 64-bit numbers, nested messages and lists: how a
# field absent from the JSON (a zero value) reads, as protobuf's generated classes answer.
_BYTES = {"key", "value", "range_end", "blob", "name"}
_BYTES_LISTS = {"keys"}
_NUMBERS = {
    "cluster_id", "member_id", "revision", "raft_term", "create_revision", "mod_revision",
    "version", "lease", "count", "deleted", "ID", "TTL", "grantedTTL", "compact_revision",
    "watch_id", "dbSize", "dbSizeInUse", "leader", "raftIndex", "raftTerm",
    "raftAppliedIndex", "hash", "rev", "memberID",
}
_MESSAGES = {"header", "kv", "prev_kv", "member", "response_range", "response_put",
             "response_delete_range", "response_txn"}
_LISTS = {"kvs", "prev_kvs", "events", "responses", "members", "leases", "alarms",
          "peerURLs", "clientURLs", "errors"}
_FLAGS = {"more", "succeeded", "created", "canceled", "isLearner", "fragment"}


class Message:
    """A v3 answer with protobuf's reading rules: ``response.header.revision``,
    ``kv.value`` (bytes), 64-bit numbers as ints; a field that is absent reads as its zero
    value. Fields are converted from the JSON when first read."""

    __slots__ = ("_fields", "_read")

    def __init__(self, fields: Dict[str, Any]):
        self._fields = fields
        self._read: Dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        read = self._read
        if name in read:
            return read[name]
        fields = self._fields
        if name in fields:
            v = read[name] = _convert(name, fields[name])
            return v
        if name in _BYTES:
            return b""
        if name in _NUMBERS:
            return 0
        if name in _MESSAGES:
            return Message({})
        if name in _LISTS or name in _BYTES_LISTS:
            return []
        if name in _FLAGS:
            return False
        if name == "type":
            return "PUT"
        raise AttributeError(name)

    def HasField(self, name: str) -> bool:  # noqa: N802  (protobuf's spelling)
        return name in self._fields

    def __repr__(self) -> str:
        return "Message(%r)" % (self._fields,)


def _convert(name: str, v: Any) -> Any:
    if isinstance(v, dict):
        return Message(v)
    if isinstance(v, list):
        if name in _BYTES_LISTS:
            return [base64.b64decode(x) for x in v]
        return [Message(x) if isinstance(x, dict) else x for x in v]
    if isinstance(v, str):
        if name in _BYTES and name != "name":
            return base64.b64decode(v)
        if name in _NUMBERS and v.lstrip("-").isdigit():
            return int(v)
    return v


def _b(v: Bytesish) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode("utf-8")


def _b64(v: Bytesish) -> str:
    return base64.b64encode(_b(v)).decode("ascii")


def prefix_range_end(prefix: bytes) -> bytes:
    """The range end that covers every key starting with ``prefix``."""
    s = bytearray(prefix)
    for i in reversed(range(len(s))):
        if s[i] < 0xFF:
            s[i] = s[i] + 1
            return bytes(s[: i + 1])
    return b"\0"


def _lease_id(lease: Any) -> int:
    if lease is None:
        return 0
    return int(getattr(lease, "id", lease))


class KVMetadata:
    """A key's metadata from a read: key, create_revision, mod_revision, version, lease_id
    and the answer's header."""

    def __init__(self, keyvalue: Message, header: Message):
        kv = keyvalue._fields
        self.key = base64.b64decode(kv.get("key", ""))
        self.create_revision = int(kv.get("create_revision", 0))
        self.mod_revision = int(kv.get("mod_revision", 0))
        self.version = int(kv.get("version", 0))
        self.lease_id = int(kv.get("lease", 0))
        self.response_header = header


def _metadata(kv: Tuple[bytes, bytes, int, int, int, int], header: Message) -> KVMetadata:
    m = KVMetadata.__new__(KVMetadata)
    m.key, _, m.create_revision, m.mod_revision, m.version, m.lease_id = kv
    m.response_header = header
    return m


def _kv_pairs(r: Message) -> List[Tuple[bytes, KVMetadata]]:
    """A range answer's (value, metadata) pairs."""
    header = r.header
    return [(base64.b64decode(kv.get("value", "")), KVMetadata(Message(kv), header))
            for kv in r._fields.get("kvs", ())]


class Status:
    def __init__(self, version: str, db_size: int, leader: Optional["Member"],
                 raft_index: int, raft_term: int):
        self.version = version
        self.db_size = db_size
        self.leader = leader
        self.raft_index = raft_index
        self.raft_term = raft_term


class Alarm:
    def __init__(self, alarm_type: str, member_id: int):
        self.alarm_type = alarm_type
        self.member_id = member_id


# ---------------------------------------------------------------- transactions

_RESULTS = {"==": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}


class BaseCompare:
    """``client.transactions.value(key) == b"v"``, ``.version(key) > 0``, ..."""

    target = ""

    def __init__(self, key: Bytesish, range_end: Optional[Bytesish] = None):
        self.key = key
        self.range_end = range_end
        self.value: Any = None
        self.op: Optional[str] = None

    def _set(self, op: str, other: Any) -> "BaseCompare":
        self.value, self.op = other, op
        return self

    def __eq__(self, other: Any) -> "BaseCompare":  # type: ignore[override]
        return self._set("EQUAL", other)

    def __ne__(self, other: Any) -> "BaseCompare":  # type: ignore[override]
        return self._set("NOT_EQUAL", other)

    def __lt__(self, other: Any) -> "BaseCompare":
        return self._set("LESS", other)

    def __gt__(self, other: Any) -> "BaseCompare":
        return self._set("GREATER", other)

    __hash__ = object.__hash__

    def build_message(self) -> Dict[str, Any]:
        if self.op is None:
            raise ValueError("op must be one of =, !=, < or >")
        m: Dict[str, Any] = {"key": _b64(self.key), "result": self.op, "target": self.target}
        if self.range_end is not None:
            m["range_end"] = _b64(self.range_end)
        self.build_compare(m)
        return m

    def build_compare(self, m: Dict[str, Any]) -> None:
        raise NotImplementedError


class Value(BaseCompare):
    target = "VALUE"

    def build_compare(self, m: Dict[str, Any]) -> None:
        m["value"] = _b64(self.value)


class Version(BaseCompare):
    target = "VERSION"

    def build_compare(self, m: Dict[str, Any]) -> None:
        m["version"] = str(int(self.value))


class Create(BaseCompare):
    target = "CREATE"

    def build_compare(self, m: Dict[str, Any]) -> None:
        m["create_revision"] = str(int(self.value))


class Mod(BaseCompare):
    target = "MOD"

    def build_compare(self, m: Dict[str, Any]) -> None:
        m["mod_revision"] = str(int(self.value))


class Lease_(BaseCompare):
    target = "LEASE"

    def build_compare(self, m: Dict[str, Any]) -> None:
        m["lease"] = str(_lease_id(self.value))


class Put:
    def __init__(self, key: Bytesish, value: Bytesish, lease: Any = None, prev_kv: bool = False):
        self.key, self.value, self.lease, self.prev_kv = key, value, lease, prev_kv


class Get:
    def __init__(self, key: Bytesish, range_end: Optional[Bytesish] = None):
        self.key, self.range_end = key, range_end


class Delete:
    def __init__(self, key: Bytesish, range_end: Optional[Bytesish] = None,
                 prev_kv: bool = False):
        self.key, self.range_end, self.prev_kv = key, range_end, prev_kv


class Txn:
    def __init__(self, compare: List[BaseCompare], success: Optional[list] = None,
                 failure: Optional[list] = None):
        self.compare, self.success, self.failure = compare, success, failure


class Transactions:
    """``client.transactions``: compares and ops for ``client.transaction``."""

    def __init__(self) -> None:
        self.value = Value
        self.version = Version
        self.create = Create
        self.mod = Mod
        self.lease = Lease_
        self.put = Put
        self.get = Get
        self.delete = Delete
        self.txn = Txn


# ---------------------------------------------------------------- leases, locks, members


class Lease:
    """A lease: ``id``, ``ttl`` as granted; ``revoke()``, ``refresh()``, and the
    ``remaining_ttl``, ``granted_ttl`` and ``keys`` the member reports now."""

    def __init__(self, lease_id: int, ttl: int, etcd_client: Optional["Etcd3Client"] = None):
        self.id = lease_id
        self.ttl = ttl
        self.etcd_client = etcd_client

    def _get_lease_info(self) -> Message:
        assert self.etcd_client is not None
        return self.etcd_client.get_lease_info(self.id)

    def revoke(self) -> None:
        assert self.etcd_client is not None
        self.etcd_client.revoke_lease(self.id)

    def refresh(self) -> List[Message]:
        assert self.etcd_client is not None
        return list(self.etcd_client.refresh_lease(self.id))

    @property
    def remaining_ttl(self) -> int:
        return self._get_lease_info().TTL

    @property
    def granted_ttl(self) -> int:
        return self._get_lease_info().grantedTTL

    @property
    def keys(self) -> List[bytes]:
        return self._get_lease_info().keys


class Lock:
    """python-etcd3's lock: the key ``/locks/<name>`` holds a unique value under a lease of
    ``ttl`` seconds while the lock is held. A context manager."""

    lock_prefix = "/locks/"

    def __init__(self, name: str, ttl: int = 60, etcd_client: Optional["Etcd3Client"] = None):
        self.name = name
        self.ttl = ttl
        if etcd_client is not None:
            self.etcd_client = etcd_client
        self.key = self.lock_prefix + self.name
        self.lease: Optional[Lease] = None
        self.uuid = uuid.uuid1().bytes
        self.revision = 0

    def acquire(self, timeout: Optional[float] = 10) -> bool:
        """Wait at most ``timeout`` seconds (None: forever) for the lock; True once held."""
        deadline = None if timeout is None else time.time() + timeout
        while True:
            if self._try_acquire():
                return True
            remaining = None
            if deadline is not None:
                remaining = max(deadline - time.time(), 0)
                if remaining == 0:
                    return False
            self._wait_delete_event(remaining)

    def _try_acquire(self) -> bool:
        c = self.etcd_client
        self.lease = c.lease(self.ttl)
        success, responses = c.transaction(
            compare=[c.transactions.create(self.key) == 0],
            success=[c.transactions.put(self.key, self.uuid, lease=self.lease)],
            failure=[c.transactions.get(self.key)],
        )
        if success:
            self.revision = responses[0].response_put.header.revision
            return True
        self.lease.revoke()
        self.lease = None
        if responses[0]:
            self.revision = responses[0][0][1].mod_revision
        return False

    def _wait_delete_event(self, timeout: Optional[float]) -> None:
        try:
            event_iter, cancel = self.etcd_client.watch(
                self.key, start_revision=self.revision + 1)
        except exceptions.WatchTimedOut:
            return
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, cancel)
            timer.start()
        for event in event_iter:
            if isinstance(event, DeleteEvent):
                break
        if timer is not None:
            timer.cancel()
        cancel()

    def release(self) -> bool:
        c = self.etcd_client
        success, _ = c.transaction(
            compare=[c.transactions.value(self.key) == self.uuid],
            success=[c.transactions.delete(self.key)],
            failure=[],
        )
        return success

    def refresh(self) -> List[Message]:
        if self.lease is not None:
            return self.lease.refresh()
        raise ValueError("No lease associated with this lock - have you acquired the lock yet?")

    def is_acquired(self) -> bool:
        value, _ = self.etcd_client.get(self.key)
        return value is not None and value == self.uuid

    def __enter__(self) -> "Lock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class Member:
    """A member of the cluster: id, name, peer_urls, client_urls."""

    def __init__(self, id: int, name: str, peer_urls: List[str], client_urls: List[str],
                 etcd_client: Optional["Etcd3Client"] = None):
        self.id = id
        self.name = name
        self.peer_urls = peer_urls
        self.client_urls = client_urls
        self._etcd_client = etcd_client

    def __str__(self) -> str:
        return "Member {id}: peer urls: {p}, client urls: {c}".format(
            id=self.id, p=self.peer_urls, c=self.client_urls)

    def remove(self) -> None:
        assert self._etcd_client is not None
        self._etcd_client.remove_member(self.id)

    def update(self, peer_urls: List[str]) -> None:
        assert self._etcd_client is not None
        self._etcd_client.update_member(self.id, peer_urls)

    @property
    def active_alarms(self) -> List[Alarm]:
        assert self._etcd_client is not None
        return list(self._etcd_client.list_alarms(member_id=self.id))


def _member(m: Message, client: "Etcd3Client") -> Member:
    return Member(m.ID, m.name, list(m.peerURLs), list(m.clientURLs), etcd_client=client)


class WatchResponse:
    """What a watch callback gets: the answer's header and its events."""

    def __init__(self, header: Message, events: List[Event]):
        self.header = header
        self.events = events


# ---------------------------------------------------------------- the client

_SORT_ORDERS = {None: "NONE", "ascend": "ASCEND", "descend": "DESCEND"}
_SORT_TARGETS = {None: "KEY", "key": "KEY", "version": "VERSION", "create": "CREATE",
                 "mod": "MOD", "value": "VALUE"}
_SORT_ORDER_NUMBERS = {None: 0, "ascend": 1, "descend": 2}
_SORT_TARGET_NUMBERS = {None: 0, "key": 0, "version": 1, "create": 2, "mod": 3, "value": 4}
_REVISION_FILTERS = ("min_mod_revision", "max_mod_revision", "min_create_revision",
                     "max_create_revision")


class Etcd3Client:
    """python-etcd3's client. ``timeout`` (seconds) bounds each call but watches."""

    def __init__(self, host: str = "localhost", port: int = 2379, ca_cert: Any = None,
                 cert_key: Any = None, cert_cert: Any = None, timeout: Optional[float] = None,
                 user: Any = None, password: Any = None, grpc_options: Any = None,
                 _native_client: Optional["_native.NativeClient"] = None):
        # python-etcd3's rules: a CA makes the channel TLS, with this client's certificate
        # and key both or neither; a user comes with its password.
        if (cert_cert is None) != (cert_key is None) or (
                cert_cert is not None and ca_cert is None):
            raise ValueError("to use a secure channel ca_cert is required by itself, or "
                             "cert_cert and cert_key must both be specified.")
        if (user is None) != (password is None):
            raise Exception("if using authentication credentials both user and password "
                            "must be specified.")
        self.timeout = timeout
        self.transactions = Transactions()
        if _native_client is None:
            scheme = "http" if ca_cert is None else "https"
            _native_client = _native.NativeClient.http(
                ["%s://%s:%d" % (scheme, host, port)], timeout, ca_cert, cert_cert, cert_key,
                False, user, password)
        self._client = _native_client
        if user is not None:
            # python-etcd3 authenticates as it is made: a wrong password fails here.
            self._call("maintenance/status", {})

    def close(self) -> None:
        """Nothing to close: connections go with the client."""

    def __enter__(self) -> "Etcd3Client":
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def _call(self, method: str, request: Dict[str, Any]) -> Message:
        answer = self._client.v3(method, json.dumps(request), self.timeout)
        return Message(json.loads(answer))

    # -------------------------------------------------------------- reads

    def _range_request(self, key: Bytesish, range_end: Optional[Bytesish] = None,
                       limit: Optional[int] = None, revision: Optional[int] = None,
                       sort_order: Optional[str] = None, sort_target: Optional[str] = "key",
                       serializable: bool = False, keys_only: bool = False,
                       count_only: bool = False, min_mod_revision: Optional[int] = None,
                       max_mod_revision: Optional[int] = None,
                       min_create_revision: Optional[int] = None,
                       max_create_revision: Optional[int] = None) -> Dict[str, Any]:
        if sort_order not in _SORT_ORDERS:
            raise ValueError('unknown sort order: "{}"'.format(sort_order))
        if sort_target not in _SORT_TARGETS:
            raise ValueError('sort_target must be one of "key", '
                             '"version", "create", "mod" or "value"')
        # Only what differs from the defaults: the common read stays a short request.
        r: Dict[str, Any] = {"key": _b64(key)}
        if range_end is not None:
            r["range_end"] = _b64(range_end)
        if sort_order is not None:
            r["sort_order"] = _SORT_ORDERS[sort_order]
        if sort_target not in (None, "key"):
            r["sort_target"] = _SORT_TARGETS[sort_target]
        for name, flag in (("serializable", serializable), ("keys_only", keys_only),
                           ("count_only", count_only)):
            if flag:
                r[name] = True
        for name, n in (("limit", limit), ("revision", revision),
                        ("min_mod_revision", min_mod_revision),
                        ("max_mod_revision", max_mod_revision),
                        ("min_create_revision", min_create_revision),
                        ("max_create_revision", max_create_revision)):
            if n is not None:
                r[name] = str(int(n))
        return r

    def _pairs(self, key: Bytesish, range_end: Optional[Bytesish] = None,
               limit: Optional[int] = None, revision: Optional[int] = None,
               sort_order: Optional[str] = None, sort_target: Optional[str] = "key",
               serializable: bool = False, keys_only: bool = False, count_only: bool = False,
               **filters: Any) -> List[Tuple[bytes, KVMetadata]]:
        """A read's (value, metadata) pairs; the common read skips JSON."""
        if any(filters.get(f) is not None for f in _REVISION_FILTERS):
            return _kv_pairs(self._call("kv/range", self._range_request(
                key, range_end, limit, revision, sort_order, sort_target, serializable,
                keys_only, count_only, **filters)))
        if sort_order not in _SORT_ORDER_NUMBERS:
            raise ValueError('unknown sort order: "{}"'.format(sort_order))
        if sort_target not in _SORT_TARGET_NUMBERS:
            raise ValueError('sort_target must be one of "key", '
                             '"version", "create", "mod" or "value"')
        (cluster_id, member_id, rev, term), kvs, _, _ = self._client.v3_range(
            _b(key), None if range_end is None else _b(range_end), int(limit or 0),
            int(revision or 0), _SORT_ORDER_NUMBERS[sort_order],
            _SORT_TARGET_NUMBERS[sort_target], serializable, keys_only, count_only,
            self.timeout)
        header = Message({"cluster_id": cluster_id, "member_id": member_id, "revision": rev,
                          "raft_term": term})
        return [(kv[1], _metadata(kv, header)) for kv in kvs]

    def get_response(self, key: Bytesish, **kwargs: Any) -> Message:
        return self._call("kv/range", self._range_request(key, **kwargs))

    def get(self, key: Bytesish, **kwargs: Any) -> Tuple[Optional[bytes], Optional[KVMetadata]]:
        """The key's value and metadata; (None, None) when it does not exist."""
        pairs = self._pairs(key, **kwargs)
        if not pairs:
            return None, None
        return pairs[-1]

    def get_prefix_response(self, key_prefix: Bytesish, **kwargs: Any) -> Message:
        if any(k in kwargs for k in ("key", "range_end")):
            raise TypeError("Don't use key or range_end with prefix")
        return self._call("kv/range", self._range_request(
            key_prefix, range_end=prefix_range_end(_b(key_prefix)), **kwargs))

    def get_prefix(self, key_prefix: Bytesish, **kwargs: Any) -> Iterator[Tuple[bytes, KVMetadata]]:
        if any(k in kwargs for k in ("key", "range_end")):
            raise TypeError("Don't use key or range_end with prefix")
        return iter(self._pairs(key_prefix, range_end=prefix_range_end(_b(key_prefix)),
                                **kwargs))

    def get_range_response(self, range_start: Bytesish, range_end: Bytesish,
                           sort_order: Optional[str] = None, sort_target: str = "key",
                           **kwargs: Any) -> Message:
        return self._call("kv/range", self._range_request(
            range_start, range_end=range_end, sort_order=sort_order,
            sort_target=sort_target, **kwargs))

    def get_range(self, range_start: Bytesish, range_end: Bytesish,
                  **kwargs: Any) -> Iterator[Tuple[bytes, KVMetadata]]:
        yield from self._pairs(range_start, range_end=range_end, **kwargs)

    def get_all_response(self, sort_order: Optional[str] = None, sort_target: str = "key",
                         keys_only: bool = False) -> Message:
        return self._call("kv/range", self._range_request(
            b"\0", range_end=b"\0", sort_order=sort_order, sort_target=sort_target,
            keys_only=keys_only))

    def get_all(self, **kwargs: Any) -> Iterator[Tuple[bytes, KVMetadata]]:
        yield from self._pairs(b"\0", range_end=b"\0", **kwargs)

    # -------------------------------------------------------------- writes

    @staticmethod
    def _put_request(key: Bytesish, value: Bytesish, lease: Any = None,
                     prev_kv: bool = False) -> Dict[str, Any]:
        r: Dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease is not None:
            r["lease"] = str(_lease_id(lease))
        if prev_kv:
            r["prev_kv"] = True
        return r

    def put(self, key: Bytesish, value: Bytesish, lease: Any = None,
            prev_kv: bool = False) -> Message:
        """Put ``value`` under ``key``; the answer has the header and, with ``prev_kv``,
        the key-value before."""
        return self._call("kv/put", self._put_request(key, value, lease, prev_kv))

    def put_if_not_exists(self, key: Bytesish, value: Bytesish, lease: Any = None) -> bool:
        status, _ = self.transaction(
            compare=[self.transactions.create(key) == "0"],
            success=[self.transactions.put(key, value, lease=lease)],
            failure=[],
        )
        return status

    def replace(self, key: Bytesish, initial_value: Bytesish, new_value: Bytesish) -> bool:
        status, _ = self.transaction(
            compare=[self.transactions.value(key) == initial_value],
            success=[self.transactions.put(key, new_value)],
            failure=[],
        )
        return status

    @staticmethod
    def _delete_request(key: Bytesish, range_end: Optional[Bytesish] = None,
                        prev_kv: bool = False) -> Dict[str, Any]:
        r: Dict[str, Any] = {"key": _b64(key), "prev_kv": prev_kv}
        if range_end is not None:
            r["range_end"] = _b64(range_end)
        return r

    def delete(self, key: Bytesish, prev_kv: bool = False,
               return_response: bool = False) -> Union[bool, Message]:
        r = self._call("kv/deleterange", self._delete_request(key, prev_kv=prev_kv))
        if return_response:
            return r
        return r.deleted >= 1

    def delete_prefix(self, prefix: Bytesish) -> Message:
        return self._call("kv/deleterange", self._delete_request(
            prefix, range_end=prefix_range_end(_b(prefix))))

    def _ops(self, ops: Optional[list]) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        for op in ops or []:
            if isinstance(op, Put):
                out.append({"request_put": self._put_request(op.key, op.value, op.lease,
                                                             op.prev_kv)})
            elif isinstance(op, Get):
                out.append({"request_range": self._range_request(op.key, op.range_end)})
            elif isinstance(op, Delete):
                out.append({"request_delete_range": self._delete_request(
                    op.key, op.range_end, op.prev_kv)})
            elif isinstance(op, Txn):
                out.append({"request_txn": {
                    "compare": [c.build_message() for c in op.compare],
                    "success": self._ops(op.success),
                    "failure": self._ops(op.failure),
                }})
            else:
                raise Exception("Unknown request class {}".format(op.__class__))
        return out

    def transaction(self, compare: List[BaseCompare], success: Optional[list] = None,
                    failure: Optional[list] = None) -> Tuple[bool, list]:
        """Run a transaction: (whether the compares held, the answers of the ops that ran;
        a read's answer as a list of (value, metadata), others as the response)."""
        r = self._call("kv/txn", {
            "compare": [c.build_message() for c in compare],
            "success": self._ops(success),
            "failure": self._ops(failure),
        })
        responses: list = []
        for op in r.responses:
            if op.HasField("response_range"):
                responses.append([(kv.value, KVMetadata(kv, r.header))
                                  for kv in op.response_range.kvs])
            else:
                responses.append(op)
        return r.succeeded, responses

    # -------------------------------------------------------------- watches

    def _watch_request(self, key: Bytesish, range_end: Optional[Bytesish] = None,
                       start_revision: Optional[int] = None, progress_notify: bool = False,
                       filters: Optional[list] = None, prev_kv: bool = False) -> Dict[str, Any]:
        r: Dict[str, Any] = {"key": _b64(key), "progress_notify": progress_notify,
                             "prev_kv": prev_kv}
        if range_end is not None:
            r["range_end"] = _b64(range_end)
        if start_revision is not None:
            r["start_revision"] = str(int(start_revision))
        if filters:
            r["filters"] = list(filters)
        return r

    def add_watch_callback(self, key: Bytesish, callback: Callable[[Any], None],
                           **kwargs: Any) -> int:
        """Call ``callback`` with every watch answer (a WatchResponse with events), or with
        the exception that ended the watch; the watch's ID, for ``cancel_watch``."""
        native = self._client.v3_watch(json.dumps(self._watch_request(key, **kwargs)))
        return self._watches.start(native, callback)

    def add_watch_prefix_callback(self, key_prefix: Bytesish, callback: Callable[[Any], None],
                                  **kwargs: Any) -> int:
        kwargs["range_end"] = prefix_range_end(_b(key_prefix))
        return self.add_watch_callback(key_prefix, callback, **kwargs)

    @property
    def _watches(self) -> "_Watches":
        w = self.__dict__.get("_watches_")
        if w is None:
            w = self.__dict__["_watches_"] = _Watches()
        return w

    def cancel_watch(self, watch_id: int) -> None:
        self._watches.cancel(watch_id)

    def watch_response(self, key: Bytesish, **kwargs: Any) -> Tuple[Iterator[WatchResponse], Callable[[], None]]:
        responses: "queue.Queue[Any]" = queue.Queue()
        watch_id = self.add_watch_callback(key, responses.put, **kwargs)
        canceled = threading.Event()

        def cancel() -> None:
            canceled.set()
            responses.put(None)
            self.cancel_watch(watch_id)

        def iterator() -> Iterator[WatchResponse]:
            while not canceled.is_set():
                response = responses.get()
                if response is None:
                    canceled.set()
                elif isinstance(response, Exception):
                    canceled.set()
                    raise response
                else:
                    yield response

        return iterator(), cancel

    def watch(self, key: Bytesish, **kwargs: Any) -> Tuple[Iterator[Event], Callable[[], None]]:
        """(an iterator over the key's events, a function that cancels the watch)."""
        responses, cancel = self.watch_response(key, **kwargs)

        def events_of() -> Iterator[Event]:
            for response in responses:
                for event in response.events:
                    yield event

        return events_of(), cancel

    def watch_prefix_response(self, key_prefix: Bytesish, **kwargs: Any) -> Tuple[Iterator[WatchResponse], Callable[[], None]]:
        kwargs["range_end"] = prefix_range_end(_b(key_prefix))
        return self.watch_response(key_prefix, **kwargs)

    def watch_prefix(self, key_prefix: Bytesish, **kwargs: Any) -> Tuple[Iterator[Event], Callable[[], None]]:
        kwargs["range_end"] = prefix_range_end(_b(key_prefix))
        return self.watch(key_prefix, **kwargs)

    def watch_once_response(self, key: Bytesish, timeout: Optional[float] = None,
                            **kwargs: Any) -> WatchResponse:
        responses: "queue.Queue[Any]" = queue.Queue()
        watch_id = self.add_watch_callback(key, responses.put, **kwargs)
        try:
            response = responses.get(timeout=timeout)
        except queue.Empty:
            raise exceptions.WatchTimedOut()
        finally:
            self.cancel_watch(watch_id)
        if isinstance(response, Exception):
            raise response
        return response

    def watch_once(self, key: Bytesish, timeout: Optional[float] = None, **kwargs: Any) -> Event:
        """The key's next event; WatchTimedOut after ``timeout`` seconds."""
        return self.watch_once_response(key, timeout=timeout, **kwargs).events[0]

    def watch_prefix_once_response(self, key_prefix: Bytesish, timeout: Optional[float] = None,
                                   **kwargs: Any) -> WatchResponse:
        kwargs["range_end"] = prefix_range_end(_b(key_prefix))
        return self.watch_once_response(key_prefix, timeout=timeout, **kwargs)

    def watch_prefix_once(self, key_prefix: Bytesish, timeout: Optional[float] = None,
                          **kwargs: Any) -> Event:
        kwargs["range_end"] = prefix_range_end(_b(key_prefix))
        return self.watch_once(key_prefix, timeout=timeout, **kwargs)

    # -------------------------------------------------------------- leases and locks

    def lease(self, ttl: int, lease_id: Optional[int] = None) -> Lease:
        r = self._call("lease/grant", {"TTL": str(int(ttl)), "ID": str(int(lease_id or 0))})
        return Lease(lease_id=r.ID, ttl=r.TTL, etcd_client=self)

    def revoke_lease(self, lease_id: int) -> None:
        self._call("lease/revoke", {"ID": str(int(lease_id))})

    def refresh_lease(self, lease_id: int) -> Iterator[Message]:
        yield self._call("lease/keepalive", {"ID": str(int(lease_id))})

    def get_lease_info(self, lease_id: int) -> Message:
        return self._call("lease/timetolive", {"ID": str(int(lease_id)), "keys": True})

    def lock(self, name: str, ttl: int = 60) -> Lock:
        return Lock(name, ttl=ttl, etcd_client=self)

    # -------------------------------------------------------------- cluster and maintenance

    def add_member(self, urls: List[str]) -> Member:
        r = self._call("cluster/member/add", {"peerURLs": list(urls)})
        return _member(r.member, self)

    def remove_member(self, member_id: int) -> None:
        self._call("cluster/member/remove", {"ID": str(int(member_id))})

    def update_member(self, member_id: int, peer_urls: List[str]) -> None:
        self._call("cluster/member/update", {"ID": str(int(member_id)),
                                             "peerURLs": list(peer_urls)})

    @property
    def members(self) -> Iterator[Member]:
        r = self._call("cluster/member/list", {})
        for m in r.members:
            yield _member(m, self)

    def status(self) -> Status:
        r = self._call("maintenance/status", {})
        leader = next((m for m in self.members if m.id == r.leader), None)
        return Status(r.version, r.dbSize, leader, r.raftIndex, r.raftTerm)

    def compact(self, revision: int, physical: bool = False) -> None:
        self._call("kv/compaction", {"revision": str(int(revision)), "physical": physical})

    def snapshot(self, file_obj: Any) -> None:
        """Write the member's snapshot (what ``etcdctl snapshot save`` writes) to
        ``file_obj``."""
        file_obj.write(self._client.v3_snapshot(self.timeout))

    def defragment(self) -> Message:
        return self._call("maintenance/defragment", {})

    def hash(self) -> int:
        return self._call("maintenance/hash", {}).hash

    def _alarm(self, action: str, member_id: int, alarm: str) -> List[Alarm]:
        r = self._call("maintenance/alarm", {"action": action, "memberID": str(int(member_id)),
                                             "alarm": alarm})
        return [Alarm(a.alarm if "alarm" in a._fields else "NONE", a.memberID)
                for a in r.alarms]

    def create_alarm(self, member_id: int = 0) -> List[Alarm]:
        return self._alarm("ACTIVATE", member_id, "NOSPACE")

    def list_alarms(self, member_id: int = 0, alarm_type: str = "none") -> Iterator[Alarm]:
        for a in self._alarm("GET", member_id, alarm_type.upper()):
            yield a

    def disarm_alarm(self, member_id: int = 0) -> List[Alarm]:
        return self._alarm("DEACTIVATE", member_id, "NOSPACE")


class _Watches:
    """The watches of one client, each read by a thread of its own that hands its answers
    to the callback (a WatchResponse, or the exception that ended the watch)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next_id = 0
        self._open: Dict[int, Any] = {}

    def start(self, native: Any, callback: Callable[[Any], None]) -> int:
        with self._lock:
            watch_id = self._next_id
            self._next_id += 1
            self._open[watch_id] = native
        threading.Thread(target=self._run, args=(watch_id, native, callback),
                         name="etcdrs-v3-watch-%d" % watch_id, daemon=True).start()
        return watch_id

    def cancel(self, watch_id: int) -> None:
        with self._lock:
            native = self._open.pop(watch_id, None)
        if native is not None:
            native.cancel()

    def _run(self, watch_id: int, native: Any, callback: Callable[[Any], None]) -> None:
        try:
            while True:
                try:
                    answer = native.next(0.5)
                except Exception as e:  # the watch failed: the callback hears why
                    _safe(callback, e)
                    return
                if answer is None:
                    if native.ended:
                        return
                    continue
                r = Message(json.loads(answer))
                if r.compact_revision:
                    _safe(callback, exceptions.RevisionCompactedError(r.compact_revision))
                    return
                if r.events or not (r.created or r.canceled):
                    _safe(callback, WatchResponse(r.header, [events.new_event(e)
                                                            for e in r.events]))
        finally:
            with self._lock:
                self._open.pop(watch_id, None)


def _safe(callback: Callable[[Any], None], what: Any) -> None:
    try:
        callback(what)
    except Exception:  # as python-etcd3: a callback's own error does not end the watch
        pass


def client(host: str = "localhost", port: int = 2379, ca_cert: Any = None,
           cert_key: Any = None, cert_cert: Any = None, timeout: Optional[float] = None,
           user: Any = None, password: Any = None, **kwargs: Any) -> Etcd3Client:
    """A client of the etcd v3 cluster at ``host``:``port`` (python-etcd3's ``client``)."""
    return Etcd3Client(host=host, port=port, ca_cert=ca_cert, cert_key=cert_key,
                       cert_cert=cert_cert, timeout=timeout, user=user, password=password,
                       **kwargs)
