"""What a handler gets besides its request: who it is, what it matched, its deadline and
cancellation, a logger — and, where the replica has them, the object store and calls to other
capabilities through the replica's router.

Example::

    @app.capability(type="chat")
    def chat(request, context):
        emb = context.call({"type": "embed"}, {"text": "hi"})          # within this request's deadline
        kv = context.call_service("kv").get("last")                      # a class service's method
        ref = context.objects.create({"embedding": emb})
        context.logger.info("answered %s", context.request_id)
        return {"ref": ref, "last": kv}
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from .capability import Capability
from .errors import AnyServeError

NO_STORE = "ObjectStore not available. Make sure --object-store is configured."
_HANDLER_LOG = logging.getLogger("anyserve.handler")
NO_CALLS = "cross-replica call not available: the replica has no API server (start it with --api-server)"


#: One lock for every Cancellation: cancelling is rare, and a request's Cancellation is made per
#: request (an Event and a Lock each would cost more than the rest of a no-op request's context).
_LOCK = threading.Lock()


class Cancellation:
    """Set once when the request is cancelled (deadline passed, caller gone); thread-safe."""

    __slots__ = ("_event", "reason", "_callbacks", "_set")

    def __init__(self) -> None:
        self._event: Optional[threading.Event] = None  # made by the first wait()
        self._set = False
        self.reason: Optional[AnyServeError] = None
        self._callbacks: Optional[List[Callable[[], None]]] = None

    def cancel(self, reason: Optional[AnyServeError] = None) -> None:
        with _LOCK:
            if self._set:
                return
            self.reason = reason or AnyServeError("CANCELLED", "the request was cancelled")
            self._set = True
            if self._event is not None:
                self._event.set()
            callbacks, self._callbacks = self._callbacks or [], None
        for cb in callbacks:
            try:
                cb()
            except Exception:  # noqa: BLE001 - a callback must not stop the others
                pass

    @property
    def cancelled(self) -> bool:
        return self._set

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits up to ``timeout`` seconds; True once cancelled."""
        with _LOCK:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def on_cancel(self, cb: Callable[[], None]) -> None:
        """Calls ``cb`` when cancelled (at once if it already is)."""
        with _LOCK:
            if not self._set:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(cb)
                return
        cb()


class ServiceProxy:
    """``context.call_service("kv").get("k")``: every attribute is a method of the remote service."""

    def __init__(self, call: Callable[[str, tuple, Dict[str, Any]], Any], name: str) -> None:
        self._call = call
        self._name = name

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("__"):
            raise AttributeError(method)
        return lambda *args, **kwargs: self._call(method, args, kwargs)

    def __repr__(self) -> str:
        return f"<service {self._name!r}>"


def service_inputs(args: tuple, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """A service method call's inputs: ``args`` (a JSON array), and ``kwargs`` (a JSON object) when given."""
    inputs: Dict[str, Any] = {"args": json.dumps(list(args), separators=(",", ":"), default=_ref_string)}
    if kwargs:
        inputs["kwargs"] = json.dumps(kwargs, separators=(",", ":"), default=_ref_string)
    return inputs


def _ref_string(v: Any) -> Any:
    from .objects import ObjRef

    if isinstance(v, ObjRef):
        return v.to_string()
    if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def unwrap_result(value: Any) -> Any:
    """A service method's answer is ``{"result": …}``: give back the result itself."""
    return value["result"] if isinstance(value, dict) and "result" in value else value


class Context:
    """See the module doc. ``deadline`` is epoch seconds (``time.time()``); ``remaining`` seconds."""

    def __init__(
        self,
        objects: Any = None,
        call_func: Optional[Callable[..., Any]] = None,
        replica_id: Optional[str] = None,
        capability: Any = None,
        *,
        request_id: str = "",
        deadline: Optional[float] = None,
        cancellation: Optional[Cancellation] = None,
        logger: Optional[logging.Logger] = None,
        worker: Optional[str] = None,
        delegation_depth: int = 0,
        stream_func: Optional[Callable[..., Any]] = None,
    ) -> None:
        self._objects = objects
        self._call = call_func
        self._stream = stream_func
        self.replica_id = replica_id
        self.capability = capability if isinstance(capability, Capability) or capability is None else Capability(capability)
        self.request_id = request_id
        self.deadline = deadline
        self.cancellation = cancellation or Cancellation()
        self.logger = logger or _HANDLER_LOG
        self.worker = worker
        self.delegation_depth = delegation_depth

    # ── objects and calls ──

    @property
    def objects(self) -> Any:
        if self._objects is None:
            raise RuntimeError(NO_STORE)
        return self._objects

    def call(self, capability: Dict[str, Any], inputs: Any, **kwargs: Any) -> Any:
        """Calls another capability through the replica's router and returns its decoded answer.

        Keywords: ``timeout`` (seconds; never more than this request has left), ``raw=True`` for the
        whole :class:`ModelInferResponse`, ``parameters``, ``datatypes`` (per input name).
        """
        if self._call is None:
            raise RuntimeError(NO_CALLS)
        return self._call(capability, inputs, **kwargs)

    async def acall(self, capability: Dict[str, Any], inputs: Any, **kwargs: Any) -> Any:
        """:meth:`call` for ``async def`` handlers: waits without holding the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.call(capability, inputs, **kwargs))

    def call_stream(self, capability: Dict[str, Any], inputs: Any, **kwargs: Any) -> Any:
        """Calls a streaming capability through the replica's router; returns an iterator of its
        chunks, each decoded as :meth:`call` decodes an answer (same keywords). The replica reads
        the stream only as fast as the handler does. Stopping early cancels the upstream call: an
        iterator the loop alone held is closed as the loop is left (``break``); one kept in a
        variable by ``close()`` or by leaving its ``with`` block — at the latest when this request
        ends. An upstream error is raised, with its code, where it arrives::

            with context.call_stream({"type": "tokens"}, {"text": "a b"}) as tokens:
                for token in tokens:
                    if token == "stop":
                        break
        """
        if self._stream is None:
            raise RuntimeError(NO_CALLS)
        return self._stream(capability, inputs, **kwargs)

    def acall_stream(self, capability: Dict[str, Any], inputs: Any, **kwargs: Any) -> Any:
        """:meth:`call_stream` for ``async def`` handlers: an async iterator (``async for``) whose
        chunks are awaited without holding the event loop; cancelling the task cancels the call."""
        from .worker.call_stream import AsyncCallStream

        return AsyncCallStream(self.call_stream(capability, inputs, **kwargs))

    def call_service(self, name: str) -> ServiceProxy:
        """A proxy of class service ``name``: ``context.call_service("kv").get("k")``."""

        def send(method: str, args: tuple, kwargs: Dict[str, Any]) -> Any:
            return unwrap_result(self.call({"service": name, "method": method}, service_inputs(args, kwargs)))

        return ServiceProxy(send, name)

    # ── time and cancellation ──

    @property
    def remaining(self) -> float:
        """Seconds left before the deadline (never negative; infinity without one)."""
        return float("inf") if self.deadline is None else max(0.0, self.deadline - time.time())

    @property
    def cancelled(self) -> bool:
        """True once the deadline passed or the caller went away: stop working and return (or raise)."""
        return self.cancellation.cancelled

    def is_cancelled(self) -> bool:
        return self.cancellation.cancelled

    def check_cancelled(self) -> None:
        """Raises the cancellation's error (``CANCELLED`` / ``DEADLINE_EXCEEDED``) if cancelled."""
        if self.cancellation.cancelled:
            raise self.cancellation.reason or AnyServeError("CANCELLED", "the request was cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleeps, but raises as soon as the request is cancelled."""
        if self.cancellation.wait(seconds):
            self.check_cancelled()

    async def asleep(self, seconds: float) -> None:
        """:meth:`sleep` for ``async def`` handlers (the task is cancelled outright on cancellation)."""
        await asyncio.sleep(seconds)
        self.check_cancelled()

    def __repr__(self) -> str:
        return f"Context(replica_id={self.replica_id!r}, capability={self.capability!r}, request_id={self.request_id!r})"


__all__ = ["Context", "Cancellation", "ServiceProxy", "service_inputs", "unwrap_result", "NO_STORE", "NO_CALLS"]
