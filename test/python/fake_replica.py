"""A stand-in for the replica's side of the worker protocol, for the worker's own tests: listens on
a Unix socket in a fresh directory, starts ``python -m anyserve.worker`` with the environment a
replica gives, and exchanges frames with it."""
from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SDK = os.path.join(ROOT, "python")
if SDK not in sys.path:
    sys.path.insert(0, SDK)

from anyserve.worker import protocol as P  # noqa: E402


class FakeReplica:
    def __init__(self, app: str, handler: Optional[int] = 0, concurrency: int = 1, env: Optional[Dict[str, str]] = None, replica_id: str = "fake-replica") -> None:
        """``handler``: the handler this stand-in serves by default — OPENed as soon as READY is read,
        and the ``h`` of RUNs that name none; None: the test OPENs handlers itself."""
        self.default_h = handler
        self._opened_default = False
        self.dir = tempfile.mkdtemp(prefix="anyserve-pyw-")
        path = os.path.join(self.dir, "workers.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.frames: "queue.Queue[Tuple[int, int, Any, bytes]]" = queue.Queue()
        self.key = os.urandom(8).hex()
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": SDK,
            "ANYSERVE_WORKER_SOCKET": path,
            "ANYSERVE_WORKER_NAME": "process-1",
            "ANYSERVE_WORKER_KEY": self.key,
            "ANYSERVE_WORKER_APP": app,
            "ANYSERVE_WORKER_REPLICA_ID": replica_id,
            "ANYSERVE_WORKER_CONCURRENCY": str(concurrency),
            "ANYSERVE_LOG_LEVEL": "error",
        }
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "anyserve.worker"], env=full_env, stderr=subprocess.PIPE)
        self.server.settimeout(30)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        reader = P.FrameReader()
        while True:
            try:
                data = self.conn.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                self.frames.put((-1, 0, None, b""))
                return
            for f in reader.feed(data):
                self.frames.put(f)

    def next(self, timeout: float = 30) -> Tuple[int, int, Any, bytes]:
        return self.frames.get(timeout=timeout)

    def expect(self, type_: int, timeout: float = 30) -> Tuple[int, int, Any, bytes]:
        """The next frame of ``type_`` (other frames are kept in ``self.seen``)."""
        end = time.time() + timeout
        while True:
            f = self.next(max(0.01, end - time.time()))
            if f[0] == type_:
                if type_ == P.READY and self.default_h is not None and not self._opened_default:
                    self._opened_default = True
                    self.open(self.default_h)
                return f
            self.seen.append(f)

    seen: List[Tuple[int, int, Any, bytes]] = []

    def send(self, type_: int, id_: int, meta: Any = None, body: bytes = b"") -> None:
        self.conn.sendall(P.encode(type_, id_, meta, body))

    def run(
        self, id_: int, mode: str, calls: List[Dict[str, Any]], bodies: List[bytes], h: Optional[int] = None, w: Optional[int] = None
    ) -> None:
        meta: Dict[str, Any] = {"mode": mode, "calls": calls, "sizes": [len(b) for b in bodies]}
        if h is None:
            h = self.default_h
        if h is not None:
            meta["h"] = h
        if w is not None:
            meta["w"] = w
        self.send(P.RUN, id_, meta, b"".join(bodies))

    def open(self, h: int) -> None:
        """Starts handler ``h`` on the worker (its unit's start hooks) and waits for OPENED."""
        self.send(P.OPEN, 0, {"h": h})
        meta = self.expect(P.OPENED)[2]
        if meta.get("code"):
            raise AssertionError(f"OPEN {h} failed: {meta}")

    def close(self) -> None:
        try:
            # shutdown, not just close: another thread is in recv() on this socket.
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.conn.close()
        finally:
            self.server.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)


def call(rid: str = "r1", ms: float = 10_000, f: str = "json", ct: str = "application/json", **extra: Any) -> Dict[str, Any]:
    c: Dict[str, Any] = {"q": {}, "f": f, "rid": rid, "dl": time.time() * 1000 + ms, "ct": ct}
    c.update(extra)
    return c


def json_body(**inputs: Any) -> bytes:
    tensors = []
    for name, value in inputs.items():
        if isinstance(value, str):
            tensors.append({"name": name, "datatype": "BYTES", "shape": [1], "data": [value]})
        elif isinstance(value, bool):
            tensors.append({"name": name, "datatype": "BOOL", "shape": [1], "data": [value]})
        else:
            tensors.append({"name": name, "datatype": "FP64", "shape": [1], "data": [value]})
    return json.dumps({"inputs": tensors}).encode()
