"""Entry of a Python worker: ``python -m anyserve.worker``, started by the replica with a minimal
environment (docs/worker-protocol.md): connects to ``ANYSERVE_WORKER_SOCKET``, says HELLO with
``ANYSERVE_WORKER_KEY``, loads ``ANYSERVE_WORKER_APP``, says READY (or BOOT_FAILED with the
Python error) and serves every handler of the app, each started by OPEN (protocol 2).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import traceback


class _JsonLines(logging.Formatter):
    """One JSON object per line on stderr, as the replica's own logs are."""

    def __init__(self, base: dict) -> None:
        super().__init__()
        self.base = base

    def format(self, record: logging.LogRecord) -> str:
        line = dict(self.base, level=record.levelname.lower(), time=int(record.created * 1000), logger=record.name, msg=record.getMessage())
        for k in ("rid", "traceback"):
            v = getattr(record, k, None)
            if v is not None:
                line[k] = v
        if record.exc_info:
            line["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(line, default=str)


_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "fatal": 50, "silent": 100}


def _logging(name: str, replica: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines({"name": "worker", "worker": name, "replica": replica, "pid": os.getpid()}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(os.environ.get("ANYSERVE_LOG_LEVEL", "info").lower(), 20))


def _memory_limit(mb: str) -> None:
    """``memory_mb``: a limit on the data segment (heap and anonymous mappings, RLIMIT_DATA). An
    allocation beyond it raises MemoryError; the worker answers WORKER_OUT_OF_MEMORY and is
    replaced. (RLIMIT_AS would count every thread's reserved arenas and stacks: a few threads
    reserve hundreds of MB of address space they never use.) Threads' stacks count: see below."""
    if not mb:
        return
    import resource
    import threading

    limit = int(mb) << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    # A thread's stack counts toward that limit (8 MiB each by default): handler threads get 2 MiB,
    # so an `async` worker's pool of threads fits in a few hundred MB.
    threading.stack_size(2 << 20)


def main() -> None:
    env = os.environ
    name = env.get("ANYSERVE_WORKER_NAME") or f"python-{os.getpid()}"
    replica_id = env.get("ANYSERVE_WORKER_REPLICA_ID", "")
    _logging(name, replica_id)
    from . import protocol as P
    from .runtime import Runtime, error_of

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(env.get("ANYSERVE_WORKER_SOCKET", ""))
    runtime = Runtime(sock, name=name, replica_id=replica_id, concurrency=int(env.get("ANYSERVE_WORKER_CONCURRENCY") or 1))
    # The worker serves every handler of the app; each starts on OPEN.
    runtime.send(P.HELLO, 0, {"worker": name, "key": env.get("ANYSERVE_WORKER_KEY", ""), "pid": os.getpid(), "protocol": P.PROTOCOL, "runtime": "python"})
    runtime.start_reader()
    try:
        _memory_limit(env.get("ANYSERVE_WORKER_MEMORY_MB", ""))
        from ..loader import load_app

        started = time.perf_counter()
        args = json.loads(env["ANYSERVE_WORKER_SERVICE_ARGS"]) if env.get("ANYSERVE_WORKER_SERVICE_ARGS") else ()
        app = load_app(env.get("ANYSERVE_WORKER_APP", ""), env.get("ANYSERVE_SERVICE") or None, args=tuple(args))
        objects = env.get("ANYSERVE_WORKER_OBJECTS")
        if objects:
            from ..objects import ObjectStore

            runtime.objects = ObjectStore.from_config(json.loads(objects), runtime.fetcher, runtime.fetch_stream)
        runtime.boot(app)
        logging.getLogger("anyserve.worker").debug("ready in %.0f ms", (time.perf_counter() - started) * 1000)
    except BaseException as err:  # noqa: BLE001 - reported to the replica, which retries a few times
        traceback.print_exc()
        e = error_of(err)
        code = e.code if e.code in ("WORKER_OUT_OF_MEMORY", "CAPABILITY_FAILED") else "CAPABILITY_FAILED"
        message = str(err) if err.__class__.__name__ == "AppLoadError" else e.message
        runtime.send(P.BOOT_FAILED, 0, P.error_meta(code, message))
        sys.stderr.flush()
        os._exit(1)
    runtime.send(P.READY, 0)
    if runtime.concurrency > 1:
        runtime.serve_async()
    else:
        runtime.serve_serial()


if __name__ == "__main__":
    main()
