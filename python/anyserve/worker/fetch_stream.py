"""An object owned by another replica, read as a stream through the replica (FETCH op ``stream``,
docs/worker-protocol.md): the replica reads it from its owner with its token and sends FETCH_CHUNK
frames within a window; the bytes the handler has taken go back as FETCH_CREDIT (by half windows),
so a handler that reads slowly or stops holds at most a window here and in the replica. ``close()``
(``with``, or dropping the iterator), the job's end and the deadline send FETCH_CANCEL: the replica
stops reading the object.

``context.objects.open_stream(ref)`` returns one for a remote object (objects.py).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Deque, Dict, Optional

from ..errors import AnyServeError
from . import protocol as P
from .call_stream import CHUNK_OVERHEAD, WINDOW

_OPEN = object()


class FetchStream:
    """An iterator over the bytes of one object (or a range of it); thread-safe ``close()``."""

    def __init__(self, runtime: Any, job: Optional[int], meta: Dict[str, Any], limit_s: float) -> None:
        self.job = job
        #: The object's info (``id``, ``size``, ``contentType``, …, and the ``offset``/``length`` sent), once the first chunk came.
        self.info: Optional[Dict[str, Any]] = None
        #: Bytes that arrived and were not read yet: at most a window (a stopped reader's bound).
        self.buffered = 0
        self._rt = runtime
        self._until = time.monotonic() + limit_s
        self._cond = threading.Condition()
        self._chunks: Deque[bytes] = deque()
        self._end: Any = _OPEN  # None: ended well; an AnyServeError: failed or closed
        self._taken = 0
        self._got = 0
        self._closed = False
        self._id = runtime.open_fetch(self)
        runtime.send(P.FETCH, self._id, dict(meta, op="stream", w=WINDOW, **({"job": job} if job is not None else {})))

    def __iter__(self) -> "FetchStream":
        return self

    def __next__(self) -> bytes:
        with self._cond:
            while not self._chunks and self._end is _OPEN:
                left = self._until - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    self._end = AnyServeError("DEADLINE_EXCEEDED", "the replica did not end the object stream in time")
            chunk = self._chunks.popleft() if self._chunks else None
            end = self._end
            if chunk is not None:
                self.buffered -= len(chunk)
        if chunk is None:
            self._cancel()
            if end is None:
                if self.info is not None and self._got != self.info.get("length", self._got):
                    raise AnyServeError("INTERNAL", f"object {self.info.get('id')}: the replica sent {self._got} bytes of {self.info.get('length')}")
                raise StopIteration
            raise end
        self._taken += len(chunk) + CHUNK_OVERHEAD
        if self._taken >= WINDOW // 2:
            self._rt.send(P.FETCH_CREDIT, self._id, {"n": self._taken})
            self._taken = 0
        return chunk

    def opened(self) -> "FetchStream":
        """Waits for the first chunk (or the error): a missing object fails here, as a local one does on open."""
        with self._cond:
            while self.info is None and self._end is _OPEN:
                left = self._until - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    break
            end = self._end
        if isinstance(end, AnyServeError) and not self._closed:
            self._cancel()
            raise end
        return self

    def read_all(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        """Stops reading: the replica stops reading the object (nothing if it had ended)."""
        with self._cond:
            self._closed = True
            self._chunks.clear()
            self.buffered = 0
            if self._end is _OPEN:
                self._end = AnyServeError("CANCELLED", "the object stream was closed")
            self._cond.notify_all()
        self._cancel()

    def _cancel(self) -> None:
        # The runtime forgets it exactly once: by FETCH_END (nothing to cancel) or here.
        if self._rt.forget_fetch(self._id) is self:
            self._rt.send(P.FETCH_CANCEL, self._id, None)

    def __enter__(self) -> "FetchStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the socket may be gone
            pass

    # ── from the runtime's reading thread ──

    def push(self, meta: Optional[Dict[str, Any]], body: bytes) -> None:
        with self._cond:
            if self._end is not _OPEN:
                return
            if self.info is None:
                self.info = dict(meta or {})
            self._chunks.append(body)
            self.buffered += len(body)
            self._got += len(body)
            self._cond.notify_all()

    def finish(self, err: Optional[AnyServeError]) -> None:
        with self._cond:
            if self._end is _OPEN:
                self._end = err
            self._cond.notify_all()
