"""The exception classes of etcdrs, with python-etcd's names and hierarchy, and the one
table from the core's error codes (by name; the numbers come from the core) to a class. The Rust side raises
every error through `exception_for`.

Every exception carries ``errorCode``, ``message``, ``cause`` and ``index`` (also as the
``payload`` dict, as python-etcd has it).
"""

from typing import Any, Dict, Optional, Type

from . import _native


class EtcdException(Exception):
    """Base of every etcdrs error."""

    def __init__(self, message: Optional[str] = None, payload: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.payload = payload
        p = payload or {}
        self.errorCode: Optional[int] = p.get("errorCode")
        self.message = p.get("message", message)
        self.cause: Optional[str] = p.get("cause")
        self.index: Optional[int] = p.get("index")


class EtcdValueError(EtcdException, ValueError):
    """A value-related error (the 2xx codes)."""


class EtcdCompareFailed(EtcdValueError):
    """A compare-and-swap or compare-and-delete failed (101)."""


class EtcdClusterIdChanged(EtcdException):
    """The cluster id changed under the client."""


class EtcdKeyError(EtcdException):
    """A key-related error."""


class EtcdKeyNotFound(EtcdKeyError):
    """Key not found (100)."""


class EtcdNotFile(EtcdKeyError):
    """Not a file (102)."""


class EtcdNotDir(EtcdKeyError):
    """Not a directory (104)."""


class EtcdAlreadyExist(EtcdKeyError):
    """Key already exists (105)."""


class EtcdRootReadOnly(EtcdKeyError):
    """The root is read only (107)."""


class EtcdDirNotEmpty(EtcdValueError):
    """Directory not empty (108)."""


class EtcdEventIndexCleared(EtcdException):
    """The waited-for index left etcd's event history (401)."""


class EtcdConnectionFailed(EtcdException):
    """No member could be reached (or the in-process member stopped)."""

    def __init__(self, message: Optional[str] = None, payload: Optional[Dict[str, Any]] = None,
                 cause: Any = None):
        super().__init__(message, payload)
        if cause is not None:
            self.cause = cause


class EtcdWatchTimedOut(EtcdConnectionFailed):
    """A watch (or another call) got no answer within its timeout."""


class EtcdInsufficientPermissions(EtcdException):
    """The request requires user authentication (110)."""


class EtcdWatcherCleared(EtcdException):
    """The watcher was cleared by a recovery (400)."""


class EtcdLeaderElectionInProgress(EtcdException):
    """During leader election (301)."""


class EtcdLockExpired(EtcdException):
    """A lock expired while it was being acquired."""


# Exception classes by the core's code names; the numbers come from the core's one error
# table (etcdrs._native.ERROR_CODES), never repeated here.
_BY_NAME: Dict[str, Type[EtcdException]] = {
    "KeyNotFound": EtcdKeyNotFound,
    "TestFailed": EtcdCompareFailed,
    "NotFile": EtcdNotFile,
    "NotDir": EtcdNotDir,
    "NodeExist": EtcdAlreadyExist,
    "RootReadOnly": EtcdRootReadOnly,
    "DirNotEmpty": EtcdDirNotEmpty,
    "Unauthorized": EtcdInsufficientPermissions,
    # The 2xx form errors.
    **{name: EtcdValueError for name in (
        "ValueRequired", "PrevValueRequired", "TtlNan", "IndexNan", "ValueOrTtlRequired",
        "TimeoutNan", "NameRequired", "IndexOrValueRequired", "IndexValueMutex",
        "InvalidField", "InvalidForm", "RefreshValue", "RefreshTtlRequired")},
    "LeaderElect": EtcdLeaderElectionInProgress,
    "WatcherCleared": EtcdWatcherCleared,
    "EventIndexCleared": EtcdEventIndexCleared,
    # etcdrs library codes.
    "ConnectionFailed": EtcdConnectionFailed,
    "Timeout": EtcdWatchTimedOut,
    "InvalidConfig": EtcdValueError,
    "Stopped": EtcdConnectionFailed,  # the member stopped or failed
    "InvalidArgument": EtcdValueError,
}

_BY_CODE: Dict[int, Type[EtcdException]] = {
    _native.ERROR_CODES[name]: cls for name, cls in _BY_NAME.items()
}


def exception_for(code: int, payload: Dict[str, Any]) -> EtcdException:
    """The exception for an error with this code, python-etcd's way: class by code, message
    ``"<message> : <cause>"``."""
    cls = _BY_CODE.get(code, EtcdException)
    return cls("{} : {}".format(payload.get("message"), payload.get("cause")), payload)
