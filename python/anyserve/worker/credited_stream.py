"""What a streaming call (call_stream.py) and a remote object stream (fetch_stream.py) share: chunks
the replica sends within a window of bytes, taken by the handler's thread; the bytes taken go back
as credit by half windows, so a handler that reads slowly or stops holds at most a window here and
in the replica. The end comes from the replica (an end frame), the deadline, or ``close()`` (the
job's end too), which tells the replica to stop. The runtime forgets a stream exactly once: at its
end frame (nothing to cancel then) or when it is cancelled here.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Deque, Optional, Tuple

from ..errors import AnyServeError

#: The window of a stream's chunks (bytes, each chunk its body plus CHUNK_OVERHEAD): the replica's.
WINDOW = 256 * 1024
CHUNK_OVERHEAD = 64

#: Not ended yet (``_end``); ``None`` is a good end, an AnyServeError a failed or closed one.
OPEN = object()


class CreditedStream:
    """A subclass names its messages (``CREDIT``, ``CANCEL``), says what it is (``WHAT``, in errors),
    makes its items of what arrives (``_item``) and registers with the runtime (``_id``)."""

    CREDIT = 0
    CANCEL = 0
    WHAT = "the stream"

    def __init__(self, runtime: Any, job: Optional[int], limit_s: float) -> None:
        self.job = job
        self._rt = runtime
        self._until = time.monotonic() + limit_s
        self._cond = threading.Condition()
        self._chunks: Deque[Any] = deque()
        self._end: Any = OPEN
        self._id: Optional[int] = None
        self._taken = 0
        self._closed = False

    def _next_chunk(self) -> Tuple[Any, Any]:
        """``(item, OPEN)``, or ``(None, end)`` once ended (the stream is then forgotten): waits up
        to the deadline, which ends it with DEADLINE_EXCEEDED."""
        with self._cond:
            while not self._chunks and self._end is OPEN:
                left = self._until - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    self._end = AnyServeError("DEADLINE_EXCEEDED", f"the replica did not end {self.WHAT} in time")
            if self._chunks:
                return self._popped(self._chunks.popleft()), OPEN
            end = self._end
        self._cancel()
        return None, end

    def _popped(self, item: Any) -> Any:
        """An item taken off the queue (under the lock)."""
        return item

    def _credit(self, nbytes: int) -> None:
        """The handler took a chunk of ``nbytes``: credit goes back by half windows."""
        self._taken += nbytes + CHUNK_OVERHEAD
        if self._taken >= WINDOW // 2:
            self._rt.send(self.CREDIT, self._id, {"n": self._taken})
            self._taken = 0

    def close(self) -> None:
        """Stops reading: the replica stops (nothing if it had ended)."""
        with self._cond:
            self._closed = True
            self._chunks.clear()  # what had arrived is not read any more
            self._cleared()
            if self._end is OPEN:
                self._end = AnyServeError("CANCELLED", f"{self.WHAT} was closed")
            self._cond.notify_all()
        self._cancel()

    def _cleared(self) -> None:
        """The queue was emptied by ``close()`` (under the lock)."""

    def _cancel(self) -> None:
        if self._id is not None and self._rt.forget_stream(self._id) is self:
            self._rt.send(self.CANCEL, self._id, None)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the socket may be gone
            pass

    # ── from the runtime's reading thread ──

    def push(self, meta: Optional[dict], body: bytes) -> None:
        with self._cond:
            if self._end is OPEN:
                self._chunks.append(self._item(meta, body))
                self._cond.notify_all()

    def _item(self, meta: Optional[dict], body: bytes) -> Any:
        """What one chunk frame becomes in the queue (under the lock)."""
        return body

    def finish(self, err: Optional[AnyServeError]) -> None:
        with self._cond:
            if self._end is OPEN:
                self._end = err
            self._cond.notify_all()
