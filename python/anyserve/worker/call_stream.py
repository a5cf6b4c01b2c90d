"""``context.call_stream`` / ``context.acall_stream`` in a Python worker: a streaming call made by the
replica (CALL_STREAM, docs/worker-protocol.md), with its token and route table, bound to the job's
abort. Chunks come back as CALL_CHUNK frames within a window: the bytes the handler has taken go back
as CALL_CREDIT, so a handler that reads slowly holds the upstream stream back rather than filling the
replica. Closing the iterator early (``break`` out of the loop drops it; ``close()``, ``with``), the
deadline, and the job's end send CALL_CANCEL: the replica cancels the upstream call.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Optional

from . import protocol as P
from .credited_stream import CHUNK_OVERHEAD, OPEN, WINDOW, CreditedStream

__all__ = ["CHUNK_OVERHEAD", "WINDOW", "CallStream", "AsyncCallStream"]


class CallStream(CreditedStream):
    """An iterator over the decoded chunks of one streaming call; thread-safe ``close()``.

    The call starts on the first ``next()``: an iterator never iterated costs nothing.
    """

    CREDIT = P.CALL_CREDIT
    CANCEL = P.CALL_CANCEL
    WHAT = "the streaming call"

    def __init__(
        self,
        runtime: Any,
        job: int,
        meta: Dict[str, Any],
        body: bytes,
        decode: Callable[[Dict[str, Any], bytes], Any],
        limit_s: float,
    ) -> None:
        super().__init__(runtime, job, limit_s + 5)  # the replica's timeout ends it first
        self._meta = meta
        self._body = body
        self._decode = decode

    def __iter__(self) -> "CallStream":
        return self

    def __next__(self) -> Any:
        got = self.next_or(OPEN)
        if got is OPEN:
            raise StopIteration
        return got

    def next_or(self, done: Any) -> Any:
        """The next chunk, or ``done`` at the end (raises the call's error; not once closed)."""
        if self._id is None and not self._closed:
            self._id = self._rt.open_stream(self)
            self._rt.send(P.CALL_STREAM, self._id, dict(self._meta, w=WINDOW), self._body)
        chunk, end = self._next_chunk()
        if chunk is None:
            if end is None or self._closed:
                return done
            raise end
        meta, body = chunk
        self._credit(len(body))
        return self._decode(meta, body)

    def _item(self, meta: Optional[dict], body: bytes) -> Any:
        return (meta or {}, body)


class AsyncCallStream:
    """:class:`CallStream` for ``async def`` handlers: ``async for chunk in context.acall_stream(...)``.
    Each chunk is awaited without holding the event loop; cancelling the task closes the call."""

    def __init__(self, stream: CallStream) -> None:
        self._s = stream

    def __aiter__(self) -> "AsyncCallStream":
        return self

    async def __anext__(self) -> Any:
        try:
            got = await asyncio.get_running_loop().run_in_executor(None, self._s.next_or, OPEN)
        except asyncio.CancelledError:
            self._s.close()
            raise
        if got is OPEN:
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
