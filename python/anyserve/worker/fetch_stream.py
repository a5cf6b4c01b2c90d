"""An object owned by another replica, read as a stream through the replica (FETCH op ``stream``,
docs/worker-protocol.md): the replica reads it from its owner with its token and sends FETCH_CHUNK
frames within a window; the bytes the handler has taken go back as FETCH_CREDIT (by half windows),
so a handler that reads slowly or stops holds at most a window here and in the replica. ``close()``
(``with``, or dropping the iterator), the job's end and the deadline send FETCH_CANCEL: the replica
stops reading the object.

``context.objects.open_stream(ref)`` returns one for a remote object (objects.py).
"""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

from ..errors import AnyServeError
from . import protocol as P
from .credited_stream import OPEN, WINDOW, CreditedStream


class FetchStream(CreditedStream):
    """An iterator over the bytes of one object (or a range of it); thread-safe ``close()``."""

    CREDIT = P.FETCH_CREDIT
    CANCEL = P.FETCH_CANCEL
    WHAT = "the object stream"

    def __init__(self, runtime: Any, job: Optional[int], meta: Dict[str, Any], limit_s: float) -> None:
        super().__init__(runtime, job, limit_s)
        #: The object's info (``id``, ``size``, ``contentType``, …, and the ``offset``/``length`` sent), once the first chunk came.
        self.info: Optional[Dict[str, Any]] = None
        #: Bytes that arrived and were not read yet: at most a window (a stopped reader's bound).
        self.buffered = 0
        self._got = 0
        self._id = runtime.open_stream(self)
        runtime.send(P.FETCH, self._id, dict(meta, op="stream", w=WINDOW, **({"job": job} if job is not None else {})))

    def __iter__(self) -> "FetchStream":
        return self

    def __next__(self) -> bytes:
        chunk, end = self._next_chunk()
        if chunk is None:
            if end is None:
                if self.info is not None and self._got != self.info.get("length", self._got):
                    raise AnyServeError("INTERNAL", f"object {self.info.get('id')}: the replica sent {self._got} bytes of {self.info.get('length')}")
                raise StopIteration
            raise end
        self._credit(len(chunk))
        return chunk

    def opened(self) -> "FetchStream":
        """Waits for the first chunk (or the error): a missing object fails here, as a local one does on open."""
        with self._cond:
            while self.info is None and self._end is OPEN:
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

    # ── under the lock (credited_stream.py) ──

    def _item(self, meta: Optional[dict], body: bytes) -> bytes:
        if self.info is None:
            self.info = dict(meta or {})
        self.buffered += len(body)
        self._got += len(body)
        return body

    def _popped(self, item: bytes) -> bytes:
        self.buffered -= len(item)
        return item

    def _cleared(self) -> None:
        self.buffered = 0
