"""etcdrs: an etcd-compatible, Raft-replicated key-value store that runs inside Python
(``etcdrs.Node``), and a client with python-etcd's API (``etcdrs.Client``) for it or any
etcd v2 cluster. Code written for python-etcd runs with ``import etcdrs as etcd``."""

from ._native import __version__
from .client import Client, EtcdResult
from .errors import (
    EtcdAlreadyExist,
    EtcdClusterIdChanged,
    EtcdCompareFailed,
    EtcdConnectionFailed,
    EtcdDirNotEmpty,
    EtcdEventIndexCleared,
    EtcdException,
    EtcdInsufficientPermissions,
    EtcdKeyError,
    EtcdKeyNotFound,
    EtcdLeaderElectionInProgress,
    EtcdLockExpired,
    EtcdNotDir,
    EtcdNotFile,
    EtcdRootReadOnly,
    EtcdValueError,
    EtcdWatcherCleared,
    EtcdWatchTimedOut,
)
from .lock import Lock
from .node import Node

__all__ = [
    "__version__",
    "Client",
    "EtcdResult",
    "Lock",
    "Node",
    "EtcdAlreadyExist",
    "EtcdClusterIdChanged",
    "EtcdCompareFailed",
    "EtcdConnectionFailed",
    "EtcdDirNotEmpty",
    "EtcdEventIndexCleared",
    "EtcdException",
    "EtcdInsufficientPermissions",
    "EtcdKeyError",
    "EtcdKeyNotFound",
    "EtcdLeaderElectionInProgress",
    "EtcdLockExpired",
    "EtcdNotDir",
    "EtcdNotFile",
    "EtcdRootReadOnly",
    "EtcdValueError",
    "EtcdWatcherCleared",
    "EtcdWatchTimedOut",
]
