"""The seed's Stream: what a streaming handler ``fn(request, context, stream)`` writes to.

``send(item)`` queues an item (a ``ModelStreamInferResponse``, a ``ModelInferResponse`` or any
plain value), ``error(message)`` records ``{"error_message": message}`` and closes, ``close()``
ends the stream. Iterating yields what was sent, in order, until the close (the error record last,
if there was one). It may be fed from another thread. In a worker, each item leaves for the client
as soon as it is sent.

Example::

    @app.capability(type="stream", stream=True)
    def tokens(request, context, stream):
        for word in request.inputs["text"].bytes_contents[0].split():
            stream.send({"token": word.decode()})
        stream.close()
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, Iterator, Optional

_END = object()


class Stream:
    def __init__(self, sink: Optional[Callable[[Any], None]] = None) -> None:
        self._sink = sink
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        #: ``{"error_message": …}`` once :meth:`error` was called.
        self.error_record: Optional[Dict[str, str]] = None

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, item: Any) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("Stream is closed: nothing can be sent after close() or error()")
            if self._sink is not None:
                self._sink(item)
            else:
                self._queue.put(item)

    def error(self, message: str) -> None:
        with self._lock:
            if self._closed:
                return
            self.error_record = {"error_message": str(message)}
            if self._sink is None:
                self._queue.put(self.error_record)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item


__all__ = ["Stream"]
