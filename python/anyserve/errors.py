"""Errors with the codes of anyserve's one catalogue (docs/errors.md).

A handler raises ``AnyServeError(code, message)`` to answer with that code; any other exception
becomes ``WORKER_ERROR`` with its message (the traceback goes to the replica's log, not the
response).

Example::

    from anyserve import AnyServeError
    raise AnyServeError("INVALID_TENSOR", "input 'x': expected 6 FP32 elements for shape [2,3], got 5")
"""
from __future__ import annotations

from typing import Any, Dict, Optional

#: Every code of the catalogue (src/errors.ts), with whether a caller may retry it.
CODES: Dict[str, bool] = {
    "INVALID_JSON": False,
    "INVALID_PROTOBUF": False,
    "UNSUPPORTED_MEDIA_TYPE": False,
    "PAYLOAD_TOO_LARGE": False,
    "INVALID_REQUEST": False,
    "INVALID_TENSOR": False,
    "INVALID_PARAMETER": False,
    "MISSING_CAPABILITY": False,
    "INVALID_CAPABILITY": False,
    "INVALID_HEADER": False,
    "ROUTE_NOT_FOUND": False,
    "METHOD_NOT_ALLOWED": False,
    "NO_MATCHING_CAPABILITY": False,
    "MODEL_NOT_FOUND": False,
    "NO_READY_REPLICA": True,
    "DELEGATION_EXHAUSTED": False,
    "REPLICA_UNREACHABLE": True,
    "UPSTREAM_PROTOCOL_ERROR": False,
    "QUEUE_FULL": True,
    "SHUTTING_DOWN": True,
    "DEADLINE_EXCEEDED": False,
    "CANCELLED": False,
    "WORKER_ERROR": False,
    "WORKER_CRASHED": False,
    "WORKER_OUT_OF_MEMORY": False,
    "CAPABILITY_FAILED": True,
    "NOT_STREAMING": False,
    "INVALID_REGISTRATION": False,
    "REPLICA_NOT_FOUND": False,
    "SERVICE_NOT_FOUND": False,
    "URL_NOT_ALLOWED": False,
    "UNAUTHENTICATED": False,
    "OBJECT_REF_INVALID": False,
    "OBJECT_NOT_FOUND": False,
    "OBJECT_EXPIRED": False,
    "OBJECT_TOO_LARGE": False,
    "OBJECT_RANGE_INVALID": False,
    "OBJECT_STORE_FULL": False,
    "OBJECT_OWNER_UNREACHABLE": True,
    "CONFIG_INVALID": False,
    "DEPLOYMENT_DOES_NOT_FIT": False,
    "INTERNAL": False,
}


class AnyServeError(Exception):
    """An error with a catalogue code; crosses processes as ``{"code", "error", "data"?}``."""

    def __init__(self, code: str, message: str, data: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.code = code if code in CODES else "INTERNAL"
        self.message = message
        self.data = data

    @property
    def retryable(self) -> bool:
        return CODES.get(self.code, False)

    def to_wire(self) -> Dict[str, Any]:
        wire: Dict[str, Any] = {"code": self.code, "error": self.message}
        if self.data is not None:
            wire["data"] = self.data
        return wire

    @classmethod
    def from_wire(cls, wire: Dict[str, Any]) -> "AnyServeError":
        return cls(str(wire.get("code", "INTERNAL")), str(wire.get("error", "unknown error")), wire.get("data"))

    @classmethod
    def of(cls, err: BaseException) -> "AnyServeError":
        """Any exception as an AnyServeError: its own code when it has one, else WORKER_ERROR."""
        if isinstance(err, AnyServeError):
            return err
        code = getattr(err, "code", None)
        if isinstance(code, str) and code in CODES:
            return cls(code, str(err))
        return cls("WORKER_ERROR", str(err) or type(err).__name__)

    def __repr__(self) -> str:
        return f"AnyServeError({self.code!r}, {self.message!r})"
