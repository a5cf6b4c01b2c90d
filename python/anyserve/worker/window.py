"""A stream job's flow-control window (docs/worker-protocol.md, CREDIT): the bytes of CHUNKs the
worker may send before the replica gives some back, counted as the replica counts them (a chunk
costs its body plus ``CHUNK_OVERHEAD``). Once it is used up, the handler's next chunk waits — its
``stream.send`` blocks, its generator is not pulled — until the replica's consumer (the client,
through the API server) has taken what was sent, or the job is cancelled. A client that stops
reading thus stops the handler a window later, instead of the replica buffering without bound.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable, List, Tuple

#: What a chunk costs beyond its body, as transport/frames.ts ``chunkCost`` counts it.
CHUNK_OVERHEAD = 64


class Window:
    __slots__ = ("left", "_cond", "_async")

    def __init__(self, size: float) -> None:
        self.left = size
        self._cond = threading.Condition()
        self._async: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]] = []

    def spend(self, body_bytes: int) -> None:
        with self._cond:
            self.left -= body_bytes + CHUNK_OVERHEAD

    def credit(self, n: float) -> None:
        """The replica's CREDIT (from the reader thread)."""
        with self._cond:
            self.left += n
        self.wake()

    def wake(self) -> None:
        """Wakes whoever waits (credit came, or the job was cancelled: they look again)."""
        with self._cond:
            self._cond.notify_all()
            waiting, self._async = self._async, []
        for loop, fut in waiting:
            loop.call_soon_threadsafe(_resolve, fut)

    def wait(self, stop: Callable[[], bool]) -> None:
        """Blocks this thread while the window is used up and ``stop()`` is false."""
        with self._cond:
            while self.left <= 0 and not stop():
                self._cond.wait()

    async def wait_async(self, stop: Callable[[], bool]) -> None:
        """The same for a coroutine on an event loop, which stays free meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                if self.left > 0 or stop():
                    return
                fut: "asyncio.Future[None]" = loop.create_future()
                self._async.append((loop, fut))
            await fut


def _resolve(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)
