"""`etcdrs.Node`: an etcd member running inside this Python process."""

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from . import _native
from .client import Client

if TYPE_CHECKING:
    from .v3 import Etcd3Client


def _flag(value: Union[str, int, List[str], Dict[str, str]]) -> str:
    """A flag's command-line text: lists comma-joined, {name: url} as name=url,..."""
    if isinstance(value, dict):
        return ",".join("%s=%s" % kv for kv in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class Node:
    """A member in this process, configured with etcd's flags as keyword arguments
    (``listen_client_urls``, ``initial_cluster``, ``initial_cluster_state``, ...; lists and
    ``{name: peer_url}`` dicts are accepted). Without URLs it serves on ephemeral ports of
    127.0.0.1. Several Nodes with one ``initial_cluster`` form a cluster in one process.
    Use it as a context manager, or call ``stop()`` (idempotent)."""

    def __init__(self, name: str = "default", data_dir: Optional[str] = None, **flags: Any):
        text = {k.replace("_", "-"): _flag(v) for k, v in flags.items()}
        self._node = _native.Node(name, data_dir or "%s.etcd" % name, text)

    @property
    def name(self) -> str:
        return self._node.name

    @property
    def member_id(self) -> int:
        return self._node.member_id

    @property
    def client_urls(self) -> List[str]:
        return list(self._node.client_urls)

    @property
    def peer_urls(self) -> List[str]:
        return list(self._node.peer_urls)

    @property
    def failure(self) -> Optional[str]:
        """Why the member failed and serves no more (its raft driver, log writer or apply
        loop died, e.g. on a full disk), or None while it runs. A failed member answers
        nothing; stop it and start a new Node on the same data dir once the cause is fixed."""
        return self._node.failure

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until the member is part of its cluster (a multi-member start returns
        before that; until then its keys requests wait); False if not within ``timeout``
        seconds."""
        return self._node.wait_ready(timeout)

    def client(self, read_timeout: float = 60) -> Client:
        """A client that calls this member directly, without HTTP."""
        return Client(read_timeout=read_timeout, _native_client=self._node.client())

    def v3_client(self, timeout: Optional[float] = None) -> "Etcd3Client":
        """A client with python-etcd3's API (``etcdrs.v3``) that calls this member's v3 API
        directly, without gRPC."""
        from .v3 import Etcd3Client

        return Etcd3Client(timeout=timeout, _native_client=self._node.client())

    def stop(self) -> None:
        self._node.stop()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
