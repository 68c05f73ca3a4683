"""`etcdrs.Client`: python-etcd's `etcd.Client` surface over etcdrs's own client (HTTP to
any etcd v2 endpoint, or in-process to an `etcdrs.Node`). Requests are handed to the Rust
core as etcd's form fields; this module only translates arguments and results."""

import json
from urllib.parse import urlparse
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _native
from .errors import EtcdException

_COMPARISONS = ("prevValue", "prevIndex", "prevExist", "refresh")
_READ_OPTIONS = ("recursive", "wait", "waitIndex", "sorted", "quorum")
_DELETE_CONDITIONS = ("prevValue", "prevIndex")


def _field(v: Any) -> str:
    """A form field as etcd reads it: booleans as true/false, the rest as text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class EtcdResult:
    """One answer of the keys API, with python-etcd's attributes: action, key, value, dir,
    ttl, expiration, createdIndex, modifiedIndex, newKey, etcd_index, raft_index, and the
    children of a directory (``leaves``, ``children``, ``get_subtree``)."""

    _node_props = {
        "key": None,
        "value": None,
        "expiration": None,
        "ttl": None,
        "modifiedIndex": None,
        "createdIndex": None,
        "newKey": False,
        "dir": False,
    }

    def __init__(self, action: Optional[str] = None, node: Optional[Dict[str, Any]] = None,
                 prevNode: Optional[Dict[str, Any]] = None, **_: Any):
        node = node or {}
        self.action = action
        for name, default in self._node_props.items():
            setattr(self, name, node.get(name, default))
        self._children: List[Dict[str, Any]] = node.get("nodes", []) if self.dir else []
        self.etcd_index: int = 0
        self.raft_index: int = 0
        if prevNode:
            self._prev_node = EtcdResult(None, node=prevNode)
            # As python-etcd: a write over a directory reports it as one.
            if self._prev_node.dir and not self.dir:
                self.dir = True

    def get_subtree(self, leaves_only: bool = False) -> Iterator["EtcdResult"]:
        """This node and everything below it (depth first); only the leaves if asked."""
        if not self._children:
            yield self
            return
        if not leaves_only:
            yield self
        for child in self._children:
            yield from EtcdResult(None, child).get_subtree(leaves_only=leaves_only)

    @property
    def leaves(self) -> Iterator["EtcdResult"]:
        return self.get_subtree(leaves_only=True)

    @property
    def children(self) -> Iterator["EtcdResult"]:
        """The leaves below this node (python-etcd's deprecated name)."""
        return self.leaves

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        return all(getattr(self, k) == getattr(other, k) for k in self._node_props)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        return "%s(%r)" % (self.__class__, self.__dict__)


Host = Union[str, Tuple[Tuple[str, int], ...]]


class ApiResponse:
    """What ``Client.api_execute`` answers, read as python-etcd's (urllib3) response is:
    ``status``, ``data`` (bytes), ``headers``, ``getheader(name, default)``."""

    def __init__(self, status: int, data: bytes, headers: Dict[str, str]):
        self.status = status
        self.data = data
        self.headers = headers

    def getheader(self, name: str, default: Optional[str] = None) -> Optional[str]:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return default


class Client:
    """A client of an etcd cluster with python-etcd's API.

    ``Client(host="127.0.0.1", port=4001)``, ``Client(host=(("h1", 2379), ("h2", 2379)))``
    or ``Client(endpoints=["http://h1:2379", ...])`` talk HTTP, moving to the next endpoint
    when one cannot be reached. ``Node.client()`` gives one that calls its member directly.
    Calls release the GIL and can be interrupted with Ctrl-C.
    """

    def __init__(self, host: Host = "127.0.0.1", port: int = 4001, protocol: str = "http",
                 read_timeout: float = 60, endpoints: Optional[Sequence[str]] = None,
                 allow_redirect: bool = True, version_prefix: str = "/v2",
                 lock_prefix: str = "/_locks",
                 cert: Optional[Union[str, Tuple[str, str]]] = None,
                 ca_cert: Optional[str] = None,
                 username: Optional[str] = None, password: Optional[str] = None,
                 _native_client: Optional["_native.NativeClient"] = None, **_ignored: Any):
        self.read_timeout = read_timeout
        self._protocol = protocol
        self._allow_redirect = allow_redirect
        self._version_prefix = version_prefix
        self._lock_prefix = lock_prefix
        self._versions: Optional[Tuple[str, str]] = None
        if _native_client is not None:
            self._client = _native_client
            self._endpoints: List[str] = []
            return
        if endpoints is None:
            if isinstance(host, tuple):
                endpoints = ["%s://%s:%d" % (protocol, h, p) for (h, p) in host]
            else:
                endpoints = ["%s://%s:%d" % (protocol, host, port)]
        self._endpoints = list(endpoints)
        # python-etcd's TLS arguments: ca_cert checks the members' certificates; cert is
        # this client's, one file holding certificate and key or a (cert, key) pair.
        cert_file, key_file = (cert if isinstance(cert, tuple) else (cert, cert))
        # python-etcd's username and password: HTTP Basic credentials for v2 auth.
        self._client = _native.NativeClient.http(self._endpoints, read_timeout or None,
                                                 ca_cert, cert_file, key_file, False,
                                                 username, password)

    # -- the keys API ------------------------------------------------------------------

    def _request(self, method: str, key: str, fields: Dict[str, str],
                 timeout: Optional[float] = None) -> EtcdResult:
        if not key.startswith("/"):
            key = "/" + key
        body, created, etcd_index, raft_index, _term = self._client.request(
            method, key, fields, timeout)
        result = EtcdResult(**json.loads(body))
        result.newKey = created
        result.etcd_index = etcd_index
        result.raft_index = raft_index
        return result

    def write(self, key: str, value: Any, ttl: Optional[int] = None, dir: bool = False,
              append: bool = False, **kwdargs: Any) -> EtcdResult:
        """Set a key (PUT), or create an in-order key in a directory (``append``).
        Conditions: prevValue, prevIndex, prevExist, refresh."""
        fields = {}
        if value is not None:
            fields["value"] = _field(value)
        if ttl is not None:
            fields["ttl"] = _field(ttl)
        if dir:
            if value:
                raise EtcdException("Cannot create a directory with a value")
            fields["dir"] = "true"
        for k in _COMPARISONS:
            if k in kwdargs and kwdargs[k] is not None:
                fields[k] = _field(kwdargs[k])
        return self._request("POST" if append else "PUT", key, fields)

    def refresh(self, key: str, ttl: int, **kwdargs: Any) -> EtcdResult:
        """Reset a key's TTL without notifying watchers."""
        kwdargs["prevExist"] = True
        return self.write(key, None, ttl=ttl, refresh=True, **kwdargs)

    def update(self, obj: EtcdResult) -> EtcdResult:
        """Write back a result read before, only if the key has not changed since."""
        kwdargs: Dict[str, Any] = {"dir": obj.dir, "ttl": obj.ttl, "prevExist": True}
        if not obj.dir:
            kwdargs["prevIndex"] = obj.modifiedIndex
        return self.write(obj.key, obj.value, **kwdargs)

    def read(self, key: str, **kwdargs: Any) -> EtcdResult:
        """Read a key or directory. Options: recursive, wait, waitIndex, sorted, quorum,
        timeout (seconds; 0 waits forever)."""
        fields = {k: _field(kwdargs[k]) for k in _READ_OPTIONS
                  if k in kwdargs and kwdargs[k] is not None}
        timeout = kwdargs.get("timeout")
        if timeout is None:
            timeout = self.read_timeout
        return self._request("GET", key, fields, timeout or None)

    def delete(self, key: str, recursive: Optional[bool] = None, dir: Optional[bool] = None,
               **kwdargs: Any) -> EtcdResult:
        """Delete a key (or a directory with ``dir``/``recursive``); conditions: prevValue,
        prevIndex."""
        fields = {}
        if recursive is not None:
            fields["recursive"] = _field(recursive)
        if dir is not None:
            fields["dir"] = _field(dir)
        for k in _DELETE_CONDITIONS:
            if k in kwdargs:
                fields[k] = _field(kwdargs[k])
        return self._request("DELETE", key, fields)

    def pop(self, key: str, recursive: Optional[bool] = None, dir: Optional[bool] = None,
            **kwdargs: Any) -> EtcdResult:
        """Delete a key and answer what it was."""
        return self.delete(key, recursive=recursive, dir=dir, **kwdargs)._prev_node

    def test_and_set(self, key: str, value: Any, prev_value: Any,
                     ttl: Optional[int] = None) -> EtcdResult:
        """Set ``value`` only if the current value is ``prev_value``."""
        return self.write(key, value, prevValue=prev_value, ttl=ttl)

    def set(self, key: str, value: Any, ttl: Optional[int] = None) -> EtcdResult:
        return self.write(key, value, ttl=ttl)

    def get(self, key: str) -> EtcdResult:
        return self.read(key)

    def __contains__(self, key: str) -> bool:
        from .errors import EtcdKeyNotFound

        try:
            self.get(key)
            return True
        except EtcdKeyNotFound:
            return False

    def watch(self, key: str, index: Optional[int] = None, timeout: Optional[float] = None,
              recursive: Optional[bool] = None) -> EtcdResult:
        """Wait for the next change of ``key`` (from ``index`` on, when given);
        EtcdWatchTimedOut after ``timeout`` seconds."""
        if index:
            return self.read(key, wait=True, waitIndex=index, timeout=timeout,
                             recursive=recursive)
        return self.read(key, wait=True, timeout=timeout, recursive=recursive)

    def eternal_watch(self, key: str, index: Optional[int] = None,
                      recursive: Optional[bool] = None) -> Iterator[EtcdResult]:
        """Every change of ``key`` from ``index`` on, forever; none is missed between two."""
        local_index = index
        while True:
            result = self.watch(key, index=local_index, timeout=0, recursive=recursive)
            local_index = result.modifiedIndex + 1
            yield result

    # -- python-etcd's raw call -----------------------------------------------------------

    _MGET = "GET"
    _MPUT = "PUT"
    _MPOST = "POST"
    _MDELETE = "DELETE"

    def api_execute(self, path: str, method: str, params: Optional[Dict[str, Any]] = None,
                    timeout: Optional[float] = None) -> "ApiResponse":
        """python-etcd's raw keys-API call: ``path`` under ``key_endpoint`` (e.g.
        ``/v2/keys/foo``), etcd's form fields in ``params``. Answers what python-etcd's
        does (``status``, ``data`` as etcd's JSON bytes, ``getheader``/``headers`` with
        X-Etcd-Index, X-Raft-Index, X-Raft-Term); a failure raises etcd's exception as
        python-etcd does. Other paths have calls of their own (machines, members, stats,
        leader)."""
        if method not in (self._MGET, self._MPUT, self._MPOST, self._MDELETE):
            raise EtcdException("HTTP method {} not supported".format(method))
        prefix = self.key_endpoint
        if path != prefix and not path.startswith(prefix + "/"):
            raise EtcdException(
                "api_execute serves the keys API (%s/...); %s has its own call" % (prefix, path))
        fields = {k: _field(v) for k, v in (params or {}).items() if v is not None}
        body, created, etcd_index, raft_index, raft_term = self._client.request(
            method, path[len(prefix):] or "/", fields,
            timeout if timeout is not None else (self.read_timeout or None))
        return ApiResponse(201 if created else 200, body.encode("utf-8"), {
            "Content-Type": "application/json",
            "X-Etcd-Index": str(etcd_index),
            "X-Raft-Index": str(raft_index),
            "X-Raft-Term": str(raft_term),
        })

    # -- the cluster -------------------------------------------------------------------

    # -- python-etcd's connection facts -------------------------------------------------

    @property
    def base_uri(self) -> Optional[str]:
        """The URI calls go to first (None for a client of an in-process member)."""
        return self._endpoints[0] if self._endpoints else None

    @property
    def host(self) -> Optional[str]:
        uri = self.base_uri
        return urlparse(uri).hostname if uri else None

    @property
    def port(self) -> Optional[int]:
        uri = self.base_uri
        return urlparse(uri).port if uri else None

    @property
    def protocol(self) -> str:
        return self._protocol

    @property
    def allow_redirect(self) -> bool:
        """Whether the client moves to another endpoint when one fails (it always does)."""
        return self._allow_redirect

    @property
    def version_prefix(self) -> str:
        return self._version_prefix

    @property
    def key_endpoint(self) -> str:
        """The keys API's path."""
        return self._version_prefix + "/keys"

    @property
    def lock_prefix(self) -> str:
        return self._lock_prefix

    @property
    def version(self) -> str:
        """The etcd server version (GET /version), asked once."""
        return self._version_info()[0]

    @property
    def cluster_version(self) -> str:
        """The cluster version (GET /version), asked once."""
        return self._version_info()[1]

    def _version_info(self) -> Tuple[str, str]:
        if self._versions is None:
            self._versions = self._client.version()
        return self._versions

    @property
    def machines(self) -> List[str]:
        return self._client.machines()

    @property
    def members(self) -> Dict[str, Dict[str, Any]]:
        """Members by id, as etcd's /v2/members describes them."""
        return {m["id"]: m for m in json.loads(self._client.members())}

    @property
    def leader(self) -> Dict[str, Any]:
        return json.loads(self._client.leader())

    @property
    def stats(self) -> Dict[str, Any]:
        return json.loads(self._client.stats("self"))

    @property
    def leader_stats(self) -> Dict[str, Any]:
        return json.loads(self._client.stats("leader"))

    @property
    def store_stats(self) -> Dict[str, Any]:
        return json.loads(self._client.stats("store"))

    # -- the lock and leader modules (/mod/v2) -----------------------------------------

    def lock_acquire(self, name: str, ttl: int, value: Optional[str] = None,
                     timeout: Optional[int] = None) -> int:
        """Acquire lock ``name`` (waiting in order of arrival, at most ``timeout``
        seconds); answers the lock index, a fencing token that only grows. A holder that
        does not renew within ``ttl`` seconds loses the lock."""
        return self._client.lock_acquire(name, ttl, value, timeout)

    def lock_retrieve(self, name: str, field: str = "value") -> str:
        """The holder's value (or its index, with ``field="index"``); "" when free."""
        return self._client.lock_retrieve(name, field)

    def lock_renew(self, name: str, ttl: int, index: Optional[int] = None,
                   value: Optional[str] = None) -> None:
        self._client.lock_renew(name, ttl, index, value)

    def lock_release(self, name: str, index: Optional[int] = None,
                     value: Optional[str] = None) -> None:
        self._client.lock_release(name, index, value)

    def set_leader(self, name: str, leader: str, ttl: int,
                   timeout: Optional[int] = None) -> int:
        """Become (or stay) the leader of ``name``; waits while another leads."""
        return self._client.set_leader(name, leader, ttl, timeout)

    def get_leader(self, name: str) -> str:
        return self._client.get_leader(name)

    def delete_leader(self, name: str, leader: str) -> None:
        self._client.delete_leader(name, leader)
