"""python-etcd3's exception classes (``etcd3.exceptions``), raised for the same gRPC codes."""

from typing import Optional


class Etcd3Exception(Exception):
    """A failed v3 call. ``code`` is etcd's gRPC status code (0 when the call never reached
    a member) and ``details`` etcd's message ("etcdserver: ...")."""

    def __init__(self, details: Optional[str] = None, code: int = 0):
        super().__init__(*(() if details is None else (details,)))
        self.details = details
        self.code = code


class WatchTimedOut(Etcd3Exception):
    pass


class InternalServerError(Etcd3Exception):
    pass


class ConnectionFailedError(Etcd3Exception):
    def __str__(self) -> str:
        return "etcd connection failed"


class ConnectionTimeoutError(Etcd3Exception):
    def __str__(self) -> str:
        return "etcd connection timeout"


class PreconditionFailedError(Etcd3Exception):
    pass


class RevisionCompactedError(Etcd3Exception):
    """A watch's start revision was compacted; ``compacted_revision`` is the oldest it
    could have started from."""

    def __init__(self, compacted_revision: int):
        self.compacted_revision = compacted_revision
        super().__init__()


class NoServerAvailableError(Etcd3Exception):
    pass


# python-etcd3's table: these gRPC codes raise these classes; any other code raises
# Etcd3Exception (python-etcd3 re-raises grpc.RpcError there) with the code and message.
_BY_CODE = {
    13: InternalServerError,  # INTERNAL
    14: ConnectionFailedError,  # UNAVAILABLE
    4: ConnectionTimeoutError,  # DEADLINE_EXCEEDED
    9: PreconditionFailedError,  # FAILED_PRECONDITION
}


def exception_for(code: int, message: str) -> Etcd3Exception:
    """The exception for a v3 call that failed with gRPC ``code`` and etcd's ``message``
    (called by the native module)."""
    return _BY_CODE.get(code, Etcd3Exception)(message, code)
