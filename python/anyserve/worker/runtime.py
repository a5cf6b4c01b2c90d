"""A Python worker's runtime: takes RUN messages, runs the app's handlers on them, answers every
RUN with exactly one terminal message (RESULT, or END for a stream), honours CANCEL and STOP.

Two ways to run, chosen by the replica (``ANYSERVE_WORKER_CONCURRENCY``):

- **one at a time** (strategies ``single``, ``multi``, ``pool``, ``process``): jobs run in arrival
  order, one at a time, on two threads that take turns (see ``serve_serial``): the thread that
  reads a job runs it while the other reads on. The replica may pipeline more jobs into the worker; because the oldest
  unanswered job is always the running one, it knows which jobs had not started when a worker
  dies. Answers of quick jobs are held while more jobs wait (at most ``HOLD_S``), so a burst goes
  back in one write.
- **N at once** (strategy ``async``): an asyncio loop on the main thread starts jobs in arrival
  order, up to N at a time: ``async def`` handlers run on the loop, plain ``def`` handlers in a
  pool of N threads. The running jobs are always the N oldest unanswered ones.

Some thread reads the socket all the time, so a CANCEL reaches a running handler (its
``context.cancelled`` turns true; an ``async def`` handler's task is cancelled outright), and the
answers to the worker's own requests (``context.call``, objects owned elsewhere) reach the
handler waiting for them.
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from ..app import AnyServe, HandlerEntry, WorkerInfo
from ..capability import normalize
from ..codec import JSON, decode_request, decode_response, encode_json_request, encode_response
from ..context import Cancellation, Context
from ..errors import AnyServeError
from ..messages import ModelInferRequest
from ..stream import Stream
from ..values import inputs_to_request, response_to_value, result_to_response
from . import protocol as P
from .call_stream import CallStream
from .credited_stream import CreditedStream
from .fetch_stream import FetchStream
from .window import Window

#: How long a quick job's answer may wait for the next jobs' before it is sent anyway (seconds).
HOLD_S = 0.0002

log = logging.getLogger("anyserve.worker")

#: The job whose handler runs in this thread (or task): the replica binds its object reads to that job's abort.
_JOB: "contextvars.ContextVar[Optional[int]]" = contextvars.ContextVar("anyserve_job", default=None)

#: The most bytes asked for in one FETCHED (a frame, less room for its meta); more is read as a stream.
MAX_FETCHED = P.MAX_FRAME - 128 * 1024


class Job:
    __slots__ = ("id", "mode", "calls", "bodies", "handler", "cancels", "task", "window")

    def __init__(
        self, id_: int, mode: str, calls: List[Dict[str, Any]], bodies: List[bytes], handler: int, window: Optional[Window] = None
    ) -> None:
        self.id = id_
        self.mode = mode
        self.calls = calls
        self.bodies = bodies
        self.handler = handler
        self.cancels = [Cancellation() for _ in calls]
        #: A stream's flow-control window (its RUN's ``w``); None without flow control.
        self.window = window
        if window is not None:
            self.cancels[0].on_cancel(window.wake)
        #: The asyncio task running it (async mode, ``async def`` handlers).
        self.task: Optional["asyncio.Task[Any]"] = None


class Control:
    """OPEN or CLOSE of handler ``h`` (protocol 2), taking its turn behind the jobs sent before it."""

    __slots__ = ("kind", "h", "id", "calls")

    def __init__(self, kind: str, h: int) -> None:
        self.kind = kind
        self.h = h
        self.id = 0
        self.calls: List[Dict[str, Any]] = []


class _Pending:
    """A request the worker made to the replica, waiting for its answer."""

    __slots__ = ("event", "meta", "body")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.meta: Optional[Dict[str, Any]] = None
        self.body = b""


Terminal = Tuple[int, Optional[Dict[str, Any]], bytes]


def error_of(err: BaseException) -> AnyServeError:
    if isinstance(err, AnyServeError):
        return err
    if isinstance(err, asyncio.CancelledError):
        return AnyServeError("CANCELLED", "the request was cancelled")
    if isinstance(err, MemoryError):
        return AnyServeError("WORKER_OUT_OF_MEMORY", "the worker went over its memory limit")
    # The exception's own message, as a TypeScript handler's Error gives its message (the type and
    # the traceback go to the replica's log).
    return AnyServeError.of(err) if getattr(err, "code", None) else AnyServeError("WORKER_ERROR", str(err) or type(err).__name__)


def _meta_of(err: AnyServeError) -> Dict[str, Any]:
    return P.error_meta(err.code, err.message, err.data)


class Runtime:
    def __init__(
        self,
        sock: socket.socket,
        *,
        name: str,
        replica_id: str,
        concurrency: int = 1,
    ) -> None:
        self.sock = sock
        self.name = name
        self.replica_id = replica_id
        self.concurrency = max(1, concurrency)
        self.app: Optional[AnyServe] = None
        self.objects: Any = None
        self._wlock = threading.Lock()
        self._out: List[bytes] = []
        self._out_since = 0.0
        self._cond = threading.Condition()
        self._queue: Deque[Any] = deque()  # Jobs, and Controls (protocol 2)
        self._running: Dict[int, Job] = {}
        self._stopping = False
        self._ready = False
        self._pending: Dict[int, _Pending] = {}
        #: Streaming calls (CALL_STREAM sent, no CALL_END yet) and objects read as streams (FETCH op
        #: stream sent, no FETCH_END yet), by id.
        self._streams: Dict[int, CreditedStream] = {}
        #: Stream jobs' windows by job id, for CREDIT (from the RUN until the job answers).
        self._windows: Dict[int, Window] = {}
        self._ids = itertools.count(1)
        #: Units whose start hooks ran, with their handlers open here (protocol 2: OPEN/CLOSE; 1: all of them).
        self._started: Dict[int, set] = {}
        self._control_running = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._reader = P.FrameReader()
        #: Held by the thread reading the socket (one at a time: the leader; serve_serial).
        self._role = threading.Lock()
        #: Average run time of a job (seconds, moving average): answers are held only while it is short.
        self._avg = HOLD_S

    # ── writing ──

    def send(self, type_: int, id_: int, meta: Optional[Dict[str, Any]] = None, body: bytes = b"", flush: bool = True) -> None:
        frame = P.encode(type_, id_, meta, body)
        with self._wlock:
            if not self._out:
                self._out_since = time.perf_counter()
            self._out.append(frame)
            if flush:
                self._flush_locked()

    def flush(self) -> None:
        with self._wlock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        try:
            self.sock.sendall(data)
        except OSError:
            _exit(0)  # the replica is gone: nothing left to serve

    # ── reading ──

    def start_reader(self) -> None:
        """The thread that reads the socket while the app loads — and, one at a time, serves as the
        main thread does afterwards (see serve_serial)."""
        target = self._serve_thread if self.concurrency == 1 else self._read_loop
        threading.Thread(target=target, name="anyserve-worker", daemon=True).start()

    def _read_loop(self) -> None:
        try:
            self._read_frames()
        except MemoryError:
            sys.stderr.write(f"MemoryError: worker {self.name} went over its memory limit reading a request\n")
            _exit(P.OOM_EXIT_CODE)
        except BaseException:  # noqa: BLE001 - without its reader the worker is deaf: end it
            traceback.print_exc()
            _exit(3)

    def _read_frames(self) -> None:
        while True:
            self._read_once()

    def _read_once(self) -> None:
        """One read of the socket; every whole frame in it is handled (RUN queued, the rest at once)."""
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            _exit(0)  # without its replica there is nothing to serve
        try:
            frames = self._reader.feed(data)
        except (P.ProtocolError, ValueError) as err:
            log.error("malformed frames from the replica: %s", err)
            _exit(1)
        for type_, id_, meta, body in frames:
            self._receive(type_, id_, meta, body)

    def _receive(self, type_: int, id_: int, meta: Any, body: bytes) -> None:
        if type_ == P.RUN:
            try:
                mode, calls, bodies, h = P.tasks_of(meta, body)
            except P.ProtocolError as err:
                self.send(P.RESULT, id_, P.error_meta("INTERNAL", f"worker protocol: {err}"))
                return
            w = meta.get("w") if isinstance(meta, dict) else None
            window = Window(w) if mode == "stream" and isinstance(w, (int, float)) and w > 0 else None
            if window is not None:
                self._windows[id_] = window
            self._admit(Job(id_, mode, calls, bodies, h, window))
        elif type_ == P.CREDIT:
            n = meta.get("n") if isinstance(meta, dict) else None
            window = self._windows.get(id_)
            if window is not None and isinstance(n, (int, float)) and n > 0:
                window.credit(n)
        elif type_ == P.CANCEL:
            self._cancel(id_, meta.get("i") if isinstance(meta, dict) and isinstance(meta.get("i"), int) else None)
        elif type_ in (P.OPEN, P.CLOSE):
            h = meta.get("h") if isinstance(meta, dict) else None
            if isinstance(h, int):
                self._admit(Control("open" if type_ == P.OPEN else "close", h))
        elif type_ == P.STOP:
            with self._cond:
                self._stopping = True
            if self._loop is not None and self.concurrency > 1:
                self._loop.call_soon_threadsafe(self._maybe_stop_async)
        elif type_ in (P.CALL_RESULT, P.FETCHED):
            pending = self._pending.pop(id_, None)
            if pending is not None:
                pending.meta, pending.body = meta, body
                pending.event.set()
        elif type_ in (P.CALL_CHUNK, P.FETCH_CHUNK):
            stream = self._streams.get(id_)
            if stream is not None:
                stream.push(meta, body)
        elif type_ in (P.CALL_END, P.FETCH_END):
            stream = self._streams.pop(id_, None)
            if stream is not None:
                stream.finish(AnyServeError.from_wire(meta) if isinstance(meta, dict) and isinstance(meta.get("code"), str) else None)
        # Unknown types are ignored, so a newer replica can add messages.

    def _admit(self, job: Any) -> None:
        if self.concurrency > 1 and self._loop is not None:
            self._loop.call_soon_threadsafe(self._admit_async, job)
            return
        with self._cond:
            self._queue.append(job)

    def _cancel(self, id_: int, index: Optional[int]) -> None:
        reason = AnyServeError("CANCELLED", "the request was cancelled")
        with self._cond:
            job = self._running.get(id_)
            at = -1
            if job is None:
                at = next((k for k, j in enumerate(self._queue) if j.id == id_), -1)
                if at < 0:
                    return
                job = self._queue[at]
            # The replica counts the oldest `concurrency` unanswered jobs as running: a job within
            # them is about to start here (and starts with its cancellation set, so its handler sees
            # it, as a running one does). One further back has not started: answered at once.
            starting = job.id in self._running or at < self.concurrency - len(self._running)
            if starting or (index is not None and len(job.calls) > 1):
                for i, c in enumerate(job.cancels):
                    if index is None or i == index:
                        c.cancel(reason)
                return
            del self._queue[at]
        self._windows.pop(id_, None)
        self.send(P.END if job.mode == "stream" else P.RESULT, id_, _meta_of(reason))

    # ── boot and stop ──

    def boot(self, app: AnyServe) -> None:
        """The app is loaded; its handlers start on OPEN."""
        self.app = app

    def _info(self, h: int) -> WorkerInfo:
        entry = self.app.handlers[h]  # type: ignore[union-attr]
        return WorkerInfo(entry.capability.to_dict(), self.replica_id, self.name)

    def _start_unit(self, unit: int) -> None:
        self.app.handlers[unit].start_hook(self._info(unit))  # type: ignore[union-attr]

    def _stop_unit(self, unit: int) -> None:
        try:
            self.app.handlers[unit].stop_hook(self._info(unit))  # type: ignore[union-attr]
        except Exception as err:  # noqa: BLE001 - logged, not raised (as onStop)
            log.warning("the stop hook of %s failed: %s", self.app.handlers[unit].capability, err)  # type: ignore[union-attr]

    def _stop_hooks(self) -> None:
        if self.app is None:
            return
        for unit in reversed(list(self._started)):
            self._stop_unit(unit)
        self._started.clear()

    def _control(self, c: Control) -> Tuple[int, Dict[str, Any]]:
        """OPEN: the unit's start hooks on its first open handler; CLOSE: its stop hooks when none is left open."""
        handlers = self.app.handlers if self.app else []
        if not 0 <= c.h < len(handlers):
            err = AnyServeError("INTERNAL", f"handler #{c.h} is not registered in this copy of the app (it has {len(handlers)})")
            return (P.OPENED if c.kind == "open" else P.CLOSED), dict(_meta_of(err), h=c.h)
        unit = handlers[c.h].unit
        if c.kind == "close":
            open_ = self._started.get(unit)
            if open_ is not None:
                open_.discard(c.h)
                if not open_:
                    del self._started[unit]
                    self._stop_unit(unit)
            return P.CLOSED, {"h": c.h}
        if unit not in self._started:
            try:
                self._start_unit(unit)
            except BaseException as err:  # noqa: BLE001 - reported; the replica may OPEN again
                traceback.print_exc()
                return P.OPENED, dict(_meta_of(AnyServeError(error_of(err).code if isinstance(err, AnyServeError) else "CAPABILITY_FAILED", str(err) or type(err).__name__)), h=c.h)
            self._started[unit] = set()
        self._started[unit].add(c.h)
        return P.OPENED, {"h": c.h}

    def _finish(self) -> None:
        self._stop_hooks()
        self.send(P.STOPPED, 0)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        _exit(0)

    # ── one at a time ──

    def serve_serial(self) -> None:
        """Serves one job at a time, on two threads that take turns (leader/follower): the thread
        holding the read role reads the socket; when it reads a job that can run, it gives up the
        role (the other thread takes it and keeps reading: a CANCEL reaches the running handler)
        and runs the job itself — no hand-over between reading a request and running it."""
        self._loop = asyncio.new_event_loop()  # for async def handlers, reused by every job
        with self._cond:
            self._ready = True
        self._serve_thread()

    def _serve_thread(self) -> None:
        try:
            while True:
                item = self._take_runnable()
                if item is not None:
                    self._run_serial(item)
                    continue
                with self._cond:
                    if self._ready and self._stopping and not self._queue and not self._running:
                        break
                self.flush()  # nothing to run: nothing held back while this thread waits
                with self._role:
                    if self._take_ready():
                        continue
                    self._read_once()
        except MemoryError:
            sys.stderr.write(f"MemoryError: worker {self.name} went over its memory limit\n")
            _exit(P.OOM_EXIT_CODE)
        self.flush()
        self._finish()

    def _take_ready(self) -> bool:
        with self._cond:
            return self._ready and bool(self._queue) and not self._running

    def _take_runnable(self) -> Any:
        """The next job (or OPEN/CLOSE) when nothing runs and the app is loaded; it is marked running."""
        with self._cond:
            if not self._ready or self._running or not self._queue:
                return None
            item = self._queue.popleft()
            if not isinstance(item, Control):
                self._running[item.id] = item
            return item

    def _run_serial(self, job: Any) -> None:
        if isinstance(job, Control):
            self.send(*self._control_frame(job))
            return
        started = time.perf_counter()
        type_, meta, body = self._execute(job, self._resolve_serial)
        now = time.perf_counter()
        self._avg = 0.8 * self._avg + 0.2 * (now - started)
        with self._cond:
            more = bool(self._queue)
        # Held only while jobs are quick and more wait, and never longer than HOLD_S.
        hold = more and self._avg < HOLD_S and (not self._out or now - self._out_since < HOLD_S)
        self.send(type_, job.id, meta, body, flush=not hold)
        self._end_streams(job.id)
        # Done only once its answer is queued: the other thread may take the next item (a CLOSE)
        # as soon as nothing runs, and its answer must come after this one (job order).
        with self._cond:
            del self._running[job.id]

    def _control_frame(self, c: Control) -> Tuple[int, int, Dict[str, Any]]:
        type_, meta = self._control(c)
        return type_, 0, meta

    def _resolve_serial(self, x: Any) -> Any:
        return self._loop.run_until_complete(_awaited(x))  # type: ignore[union-attr]

    # ── N at once ──

    def serve_async(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="anyserve-handler")
        loop.set_default_executor(self._executor)
        # Jobs that arrived while the app was loading.
        loop.call_soon(self._pump_async)  # jobs that arrived while the app was loading
        loop.call_soon(self._maybe_stop_async)
        loop.run_forever()

    def _admit_async(self, item: Any) -> None:
        with self._cond:
            self._queue.append(item)
        self._pump_async()

    def _pump_async(self) -> None:
        """Starts queued jobs in arrival order up to N at once; an OPEN/CLOSE waits for the jobs before it and holds the ones after."""
        while True:
            with self._cond:
                if not self._queue or self._control_running:
                    return
                head = self._queue[0]
                if isinstance(head, Control):
                    if self._running:
                        return
                    self._queue.popleft()
                    self._control_running = True
                else:
                    if len(self._running) >= self.concurrency:
                        return
                    self._queue.popleft()
                    self._running[head.id] = head
            if isinstance(head, Control):
                self._loop.create_task(self._run_control_async(head))  # type: ignore[union-attr]
                return
            self._start_task(head)

    async def _run_control_async(self, c: Control) -> None:
        frame = await asyncio.get_running_loop().run_in_executor(None, self._control_frame, c)
        self.send(*frame)
        with self._cond:
            self._control_running = False
        self._pump_async()
        self._maybe_stop_async()

    def _start_task(self, job: Job) -> None:
        loop = self._loop
        task = job.task = loop.create_task(self._run_async(job))  # type: ignore[union-attr]
        # An `async def` handler's task is cancelled outright (a `def` one runs in a thread: it sees context.cancelled).
        job.cancels[0].on_cancel(lambda: loop.call_soon_threadsafe(_cancel_task, job, task))  # type: ignore[union-attr]

    async def _run_async(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        entry = self._entry(job)
        try:
            if entry is not None and entry.is_async:
                terminal = await self._execute_async(job)
            else:
                job.task = None  # a thread cannot be cancelled: the handler sees context.cancelled
                terminal = await loop.run_in_executor(None, self._execute, job, self._resolve_threaded)
        except asyncio.CancelledError:
            terminal = (P.END if job.mode == "stream" else P.RESULT, _meta_of(AnyServeError("CANCELLED", "the request was cancelled")), b"")
        with self._cond:
            self._running.pop(job.id, None)
        self.send(terminal[0], job.id, terminal[1], terminal[2])
        self._end_streams(job.id)
        self._pump_async()
        self._maybe_stop_async()

    def _resolve_threaded(self, x: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(_awaited(x), self._loop).result()  # type: ignore[arg-type]

    def _maybe_stop_async(self) -> None:
        with self._cond:
            done = self._stopping and not self._running and not self._queue and not self._control_running
        if done:
            self._finish()

    # ── running a job ──

    def _entry(self, job: Job) -> Optional[HandlerEntry]:
        handlers = self.app.handlers if self.app else []
        return handlers[job.handler] if 0 <= job.handler < len(handlers) else None

    def _execute(self, job: Job, resolve: Callable[[Any], Any]) -> Terminal:
        """Runs a job to its terminal frame, awaiting what the handler returns with ``resolve``."""
        terminal_type = P.END if job.mode == "stream" else P.RESULT
        try:
            entry = self._require(job)
            if job.mode == "batch":
                return self._batch(job, entry, resolve)
            req, ctx = self._prepare(job, entry, 0)
            if job.mode == "stream":
                self._stream(job, entry, req, ctx, resolve)
                return P.END, {}, b""
            result = _invoke(entry, req, ctx)
            if inspect.isawaitable(result):
                result = resolve(result)
            meta, body = self._answer(result, entry, job.calls[0], req)
            return P.RESULT, meta, body
        except BaseException as err:  # noqa: BLE001 - every failure is answered
            return terminal_type, self._failure(err, job), b""

    async def _execute_async(self, job: Job) -> Terminal:
        terminal_type = P.END if job.mode == "stream" else P.RESULT
        try:
            entry = self._require(job)
            if job.mode == "batch":
                return await asyncio.get_running_loop().run_in_executor(None, self._batch, job, entry, self._resolve_threaded)
            req, ctx = self._prepare(job, entry, 0)
            if job.mode == "stream":
                await self._stream_async(job, entry, req, ctx)
                return P.END, {}, b""
            result = _invoke(entry, req, ctx)
            if inspect.isawaitable(result):
                result = await result
            meta, body = self._answer(result, entry, job.calls[0], req)
            return P.RESULT, meta, body
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # noqa: BLE001
            return terminal_type, self._failure(err, job), b""

    def _require(self, job: Job) -> HandlerEntry:
        entry = self._entry(job)
        if entry is None or entry.fn is None or entry.unit not in self._started:
            raise AnyServeError(
                "INTERNAL",
                f"handler #{job.handler} is not started in this worker (no OPEN, or another unit): workers must load the same app as the replica",
            )
        return entry

    def _failure(self, err: BaseException, job: Job) -> Dict[str, Any]:
        e = error_of(err)
        if e.code == "WORKER_OUT_OF_MEMORY" and isinstance(err, MemoryError):
            # As a Node worker over its heap: the process ends at once, the replica fails the running
            # request with WORKER_OUT_OF_MEMORY (by the exit code), sends the others elsewhere and
            # starts a replacement.
            sys.stderr.write(f"MemoryError: worker {self.name} went over its memory limit\n")
            _exit(P.OOM_EXIT_CODE)
        if not isinstance(err, AnyServeError) and not isinstance(err, asyncio.CancelledError):
            log.error(
                "handler raised: %s",
                e.message,
                extra={"rid": job.calls[0].get("rid") if job.calls else None, "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__))},
            )
        return _meta_of(e)

    def _prepare(self, job: Job, entry: HandlerEntry, i: int) -> Tuple[ModelInferRequest, Context]:
        _JOB.set(job.id)
        call = job.calls[i]
        req = decode_request(job.bodies[i], call.get("ct"), call.get("hl"))
        req.capability = call.get("q") or {}
        dl = call.get("dl")
        deadline_ms = float(dl) if isinstance(dl, (int, float)) else time.time() * 1000 + 60_000
        t = req.parameters.get("timeout")
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0 or t == float("inf"):
                raise AnyServeError("INVALID_PARAMETER", f"parameter 'timeout': expected a positive number of microseconds, got {json.dumps(t)}")
            lowered = time.time() * 1000 + t / 1000
            if lowered < deadline_ms:
                deadline_ms = lowered
                self.send(P.DEADLINE, job.id, {"i": i, "dl": deadline_ms})
        ctx = Context(
            self.objects,
            self._caller(job.id, deadline_ms / 1000),
            self.replica_id,
            entry.capability,
            request_id=str(call.get("rid", "")),
            deadline=deadline_ms / 1000,
            cancellation=job.cancels[i],
            worker=self.name,
            delegation_depth=int(call.get("d") or 0),
            stream_func=self._streamer(job.id, deadline_ms / 1000),
        )
        return req, ctx

    def _answer(self, result: Any, entry: HandlerEntry, call: Dict[str, Any], req: ModelInferRequest) -> Tuple[Optional[Dict[str, Any]], bytes]:
        m = call.get("m") or {}
        model = m.get("name") or req.model_name or entry.capability.get("model") or entry.capability.get("type") or "anyserve"
        res = result_to_response(result, model, req.id or None)
        if m.get("version") is not None and not res.model_version:
            res.model_version = m["version"]
        if req.outputs:
            chosen = []
            for o in req.outputs:
                t = res.outputs.get(o.name)
                if t is None:
                    have = ", ".join(f"'{x.name}'" for x in res.outputs) or "no outputs"
                    raise AnyServeError("INVALID_REQUEST", f"requested output '{o.name}' is not produced: the handler returned {have}")
                chosen.append(t)
            res.outputs[:] = chosen
        body, ct, hl = encode_response(res, call.get("f") or "json", req)
        return P.answer_meta(ct, hl), body

    def _stream_sink(
        self, job: Job, entry: HandlerEntry, req: ModelInferRequest, errors: List[str], block: bool = True
    ) -> Callable[[Any], None]:
        """Sends one chunk; with ``block``, then waits while the job's window is used up (see window.py)."""
        from .._proto import grpc_predict_v2_pb2 as pb

        window = job.window
        stopped = lambda: job.cancels[0].cancelled  # noqa: E731

        def sink(item: Any) -> None:
            if errors or job.cancels[0].cancelled:
                return
            if isinstance(item, pb.ModelStreamInferResponse) and item.error_message:
                errors.append(item.error_message)
                return
            if isinstance(item, dict) and set(item) == {"error_message"}:
                errors.append(str(item["error_message"]))
                return
            meta, body = self._answer(item, entry, job.calls[0], req)
            self.send(P.CHUNK, job.id, meta, body)
            if window is not None:
                window.spend(len(body))
                if block:
                    window.wait(stopped)

        return sink

    def _stream(self, job: Job, entry: HandlerEntry, req: ModelInferRequest, ctx: Context, resolve: Callable[[Any], Any]) -> None:
        errors: List[str] = []
        sink = self._stream_sink(job, entry, req, errors)
        stream = Stream(sink)
        result = _invoke(entry, req, ctx, stream)
        if inspect.isawaitable(result):
            result = resolve(result)
        if inspect.isasyncgen(result):
            agen = result
            while not job.cancels[0].cancelled:
                try:
                    sink(resolve(agen.__anext__()))
                except StopAsyncIteration:
                    break
        elif inspect.isgenerator(result) or (result is not None and not entry.takes_stream and _iterable(result)):
            for item in result:
                if job.cancels[0].cancelled:
                    break
                sink(item)
        elif result is not None and not entry.takes_stream:
            sink(result)
        self._end_stream(stream, errors, job)

    async def _stream_async(self, job: Job, entry: HandlerEntry, req: ModelInferRequest, ctx: Context) -> None:
        errors: List[str] = []
        # ``stream.send`` from an ``async def`` handler is a plain call on the loop: with the window
        # used up it blocks the loop until credit comes (other jobs wait too; bounded memory wins).
        # An async generator is not pulled meanwhile, and the loop stays free.
        sink = self._stream_sink(job, entry, req, errors)
        send = self._stream_sink(job, entry, req, errors, block=False)
        stream = Stream(sink)
        result = _invoke(entry, req, ctx, stream)
        if inspect.isawaitable(result):
            result = await result
        if inspect.isasyncgen(result):
            stopped = lambda: job.cancels[0].cancelled  # noqa: E731
            async for item in result:
                if job.cancels[0].cancelled:
                    break
                send(item)
                if job.window is not None:
                    await job.window.wait_async(stopped)
        elif result is not None and not entry.takes_stream and _iterable(result):
            for item in result:
                sink(item)
        elif result is not None and not entry.takes_stream:
            sink(result)
        self._end_stream(stream, errors, job)

    @staticmethod
    def _end_stream(stream: Stream, errors: List[str], job: Job) -> None:
        if stream.error_record is not None:
            errors.append(stream.error_record["error_message"])
        stream.close()
        if errors:
            raise AnyServeError("WORKER_ERROR", errors[0])
        if job.cancels[0].cancelled:
            raise job.cancels[0].reason or AnyServeError("CANCELLED", "the request was cancelled")

    def _batch(self, job: Job, entry: HandlerEntry, resolve: Callable[[Any], Any]) -> Terminal:
        n = len(job.calls)
        items: List[Optional[Dict[str, Any]]] = [None] * n
        answers: List[bytes] = [b""] * n
        live: List[Tuple[int, ModelInferRequest, Context]] = []
        for i in range(n):
            try:
                req, ctx = self._prepare(job, entry, i)
                live.append((i, req, ctx))
            except BaseException as err:  # noqa: BLE001 - a request that does not decode fails alone
                items[i] = self._failure(err, job)
        if live:
            try:
                results = entry.fn([r for _, r, _ in live], [c for _, _, c in live])  # type: ignore[misc]
                if inspect.isawaitable(results):
                    results = resolve(results)
                if not isinstance(results, (list, tuple)) or len(results) != len(live):
                    got = f"{len(results)} results" if isinstance(results, (list, tuple)) else type(results).__name__
                    raise AnyServeError(
                        "WORKER_ERROR",
                        f"batch handler for {entry.capability} returned {got} for {len(live)} requests; it must return a list of the same length",
                    )
                for (i, req, _), r in zip(live, results):
                    try:
                        if isinstance(r, BaseException):
                            raise r
                        meta, body = self._answer(r, entry, job.calls[i], req)
                        items[i] = dict(meta or {}, n=len(body))
                        answers[i] = body
                    except BaseException as err:  # noqa: BLE001
                        items[i] = self._failure(err, job)
            except BaseException as err:  # noqa: BLE001 - a throw fails every request of the batch
                meta = self._failure(err, job)
                for i, _, _ in live:
                    items[i] = meta
        return P.RESULT, {"items": items}, b"".join(a for a, it in zip(answers, items) if it is not None and "n" in it)

    # ── the worker's own requests to the replica ──

    def request(self, type_: int, meta: Dict[str, Any], body: bytes, timeout: float) -> Tuple[Dict[str, Any], bytes]:
        """Sends CALL or FETCH and waits for the replica's answer; raises its error."""
        id_ = next(self._ids) % 0xFFFFFFFE + 1
        pending = _Pending()
        self._pending[id_] = pending
        self.send(type_, id_, meta, body)
        if not pending.event.wait(timeout):
            self._pending.pop(id_, None)
            raise AnyServeError("DEADLINE_EXCEEDED", f"the replica did not answer within {timeout:.3f} s")
        answer = pending.meta or {}
        if isinstance(answer.get("code"), str):
            raise AnyServeError.from_wire(answer)
        return answer, pending.body

    def _caller(self, job_id: int, deadline_s: float) -> Callable[..., Any]:
        def call(capability: Dict[str, Any], inputs: Any, timeout: Optional[float] = None, raw: bool = False, **kw: Any) -> Any:
            meta, body, limit = _call_request(job_id, deadline_s, capability, inputs, timeout, **kw)
            answer, out = self.request(P.CALL, meta, body, limit + 5)
            return _decoded(answer, out, raw)

        return call

    def _streamer(self, job_id: int, deadline_s: float) -> Callable[..., CallStream]:
        def call_stream(capability: Dict[str, Any], inputs: Any, timeout: Optional[float] = None, raw: bool = False, **kw: Any) -> CallStream:
            meta, body, limit = _call_request(job_id, deadline_s, capability, inputs, timeout, **kw)
            return CallStream(self, job_id, meta, body, lambda m, b: _decoded(m, b, raw), limit)

        return call_stream

    # A CallStream's or FetchStream's side: its id, and forgetting it (its end frame, or cancelled:
    # whichever comes first). The ids are the worker's own, one space for both kinds.
    def open_stream(self, stream: CreditedStream) -> int:
        id_ = next(self._ids) % 0xFFFFFFFE + 1
        self._streams[id_] = stream
        return id_

    def forget_stream(self, id_: int) -> Optional[CreditedStream]:
        return self._streams.pop(id_, None)

    def _end_streams(self, job_id: int) -> None:
        """A job answered: its streaming calls and object streams still open are cancelled (a handler may leave one unfinished)."""
        self._windows.pop(job_id, None)
        for stream in [s for s in list(self._streams.values()) if s.job == job_id]:
            stream.close()

    def fetcher(self, ref: str, op: str, **extra: Any) -> Tuple[Dict[str, Any], bytes]:
        """Reads an object the replica can reach (another replica's, with the replica's token):
        op ``stat``, ``get`` or ``range`` (``offset``, ``length``) in one FETCHED; a whole object
        or a range larger than one FETCHED carries is read as a stream and joined."""
        job = _JOB.get()
        meta: Dict[str, Any] = dict({"ref": ref, "op": op}, **extra, **({"job": job} if job is not None else {}))
        size = extra.get("length")
        if op == "get":
            size = _ref_size(ref)
        if op in ("get", "range") and (size is None or size > MAX_FETCHED):
            stream = self.fetch_stream(ref, extra.get("offset"), extra.get("length")).opened()
            body = stream.read_all()
            return dict(stream.info or {}), body
        return self.request(P.FETCH, meta, b"", 120)

    def fetch_stream(self, ref: str, offset: Optional[int] = None, length: Optional[int] = None) -> FetchStream:
        """The object (or ``length`` bytes at ``offset``) as a stream through the replica."""
        span = {k: v for k, v in (("offset", offset), ("length", length)) if v is not None}
        return FetchStream(self, _JOB.get(), dict(span, ref=ref), 600)


def _ref_size(ref: str) -> Optional[int]:
    """The size a ref string names (None when it names none)."""
    from ..objects import ObjRef

    try:
        size = ObjRef.from_string(ref).size
    except AnyServeError:
        return None
    return size if size >= 0 else None


def _call_request(
    job_id: int,
    deadline_s: float,
    capability: Dict[str, Any],
    inputs: Any,
    timeout: Optional[float],
    parameters: Optional[Dict[str, Any]] = None,
    datatypes: Optional[Dict[str, str]] = None,
    id: Optional[str] = None,
) -> Tuple[Dict[str, Any], bytes, float]:
    """A CALL's (or CALL_STREAM's) meta and body, and the seconds it may take."""
    q = normalize(capability, "capability")
    req = inputs_to_request(inputs, datatypes)
    if parameters:
        req.parameters.update(parameters)
    if id:
        req.id = id
    body, ct, hl = encode_json_request(req, binary=True)
    limit = min(deadline_s - time.time(), float("inf") if timeout is None else timeout)
    if limit <= 0:
        raise AnyServeError("DEADLINE_EXCEEDED", f"no time left to call {q}: the request's deadline has passed")
    meta: Dict[str, Any] = {"job": job_id, "q": q, "timeout": limit * 1000, "ct": ct}
    if hl is not None:
        meta["hl"] = hl
    return meta, body, limit


def _decoded(meta: Dict[str, Any], body: bytes, raw: bool) -> Any:
    """A CALL_RESULT's or CALL_CHUNK's answer, decoded as ``context.call`` gives it."""
    res = decode_response(body, meta.get("ct") or JSON, meta.get("hl"))
    return res if raw else response_to_value(res)


def _cancel_task(job: Job, task: "asyncio.Task[Any]") -> None:
    if job.task is task:
        task.cancel()


def _invoke(entry: HandlerEntry, req: ModelInferRequest, ctx: Context, stream: Optional[Stream] = None) -> Any:
    fn = entry.fn
    if entry.takes_stream:
        return fn(req, ctx, stream)  # type: ignore[misc]
    if entry.uses_context:
        return fn(req, ctx)  # type: ignore[misc]
    return fn(req)  # type: ignore[misc]


def _iterable(x: Any) -> bool:
    return hasattr(x, "__iter__") and not isinstance(x, (str, bytes, bytearray, dict)) and not hasattr(x, "outputs") and type(x).__module__ != "numpy"


async def _awaited(x: Any) -> Any:
    return await x


def _exit(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)
