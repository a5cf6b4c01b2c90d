"""``context.call_stream`` / ``context.acall_stream`` in a Python worker: a streaming call made by the
replica (CALL_STREAM, docs/worker-protocol.md), with its token and route table, bound to the job's
abort. Chunks come back as CALL_CHUNK frames within a window: the bytes the handler has taken go back
as CALL_CREDIT, so a handler that reads slowly holds the upstream stream back rather than filling the
replica. Closing the iterator early (``break`` out of the loop drops it; ``close()``, ``with``), the
deadline, and the job's end send CALL_CANCEL: the replica cancels the upstream call.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from ..errors import AnyServeError
from . import protocol as P

#: The window of a CALL_STREAM's chunks (bytes, each chunk its body plus CHUNK_OVERHEAD): the replica's.
WINDOW = 256 * 1024
CHUNK_OVERHEAD = 64

_OPEN = object()


class CallStream:
    """An iterator over the decoded chunks of one streaming call; thread-safe ``close()``.

    The call starts on the first ``next()``: an iterator never iterated costs nothing.
    """

    def __init__(
        self,
        runtime: Any,
        job: int,
        meta: Dict[str, Any],
        body: bytes,
        decode: Callable[[Dict[str, Any], bytes], Any],
        limit_s: float,
    ) -> None:
        self.job = job
        self._rt = runtime
        self._meta = meta
        self._body = body
        self._decode = decode
        self._until = time.monotonic() + limit_s + 5  # the replica's timeout ends it first
        self._cond = threading.Condition()
        self._chunks: Deque[Tuple[Dict[str, Any], bytes]] = deque()
        self._end: Any = _OPEN  # None: ended well; an AnyServeError: failed or closed
        self._id: Optional[int] = None
        self._taken = 0
        self._closed = False

    def __iter__(self) -> "CallStream":
        return self

    def __next__(self) -> Any:
        got = self.next_or(_OPEN)
        if got is _OPEN:
            raise StopIteration
        return got

    def next_or(self, done: Any) -> Any:
        """The next chunk, or ``done`` at the end (raises the call's error)."""
        if self._id is None and not self._closed:
            self._id = self._rt.open_stream(self)
            self._rt.send(P.CALL_STREAM, self._id, dict(self._meta, w=WINDOW), self._body)
        with self._cond:
            while not self._chunks and self._end is _OPEN:
                left = self._until - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    self._end = AnyServeError("DEADLINE_EXCEEDED", "the replica did not end the streaming call in time")
            chunk = self._chunks.popleft() if self._chunks else None
            end = self._end
        if chunk is None:
            self._cancel()
            if end is None or self._closed:
                return done
            raise end
        meta, body = chunk
        self._taken += len(body) + CHUNK_OVERHEAD
        if self._taken >= WINDOW // 2:
            self._rt.send(P.CALL_CREDIT, self._id, {"n": self._taken})
            self._taken = 0
        return self._decode(meta, body)

    def close(self) -> None:
        """Stops reading: the replica cancels the upstream call (nothing if it had ended)."""
        with self._cond:
            self._closed = True
            self._chunks.clear()  # what had arrived is not read any more
            if self._end is _OPEN:
                self._end = AnyServeError("CANCELLED", "the streaming call was closed")
            self._cond.notify_all()
        self._cancel()

    def _cancel(self) -> None:
        # The runtime forgets it exactly once: by CALL_END (nothing to cancel) or here.
        if self._id is not None and self._rt.forget_stream(self._id) is self:
            self._rt.send(P.CALL_CANCEL, self._id, None)

    def __enter__(self) -> "CallStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the socket may be gone
            pass

    # ── from the runtime's reading thread ──

    def push(self, meta: Dict[str, Any], body: bytes) -> None:
        with self._cond:
            if self._end is _OPEN:
                self._chunks.append((meta, body))
                self._cond.notify_all()

    def finish(self, err: Optional[AnyServeError]) -> None:
        with self._cond:
            if self._end is _OPEN:
                self._end = err
            self._cond.notify_all()


class AsyncCallStream:
    """:class:`CallStream` for ``async def`` handlers: ``async for chunk in context.acall_stream(...)``.
    Each chunk is awaited without holding the event loop; cancelling the task closes the call."""

    def __init__(self, stream: CallStream) -> None:
        self._s = stream

    def __aiter__(self) -> "AsyncCallStream":
        return self

    async def __anext__(self) -> Any:
        try:
            got = await asyncio.get_running_loop().run_in_executor(None, self._s.next_or, _OPEN)
        except asyncio.CancelledError:
            self._s.close()
            raise
        if got is _OPEN:
            raise StopAsyncIteration
        return got

    async def aclose(self) -> None:
        self._s.close()

    def close(self) -> None:
        self._s.close()

    async def __aenter__(self) -> "AsyncCallStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._s.close()

    def __del__(self) -> None:
        try:
            self._s.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the socket may be gone
            pass
