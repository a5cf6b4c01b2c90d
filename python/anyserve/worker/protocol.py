"""The worker protocol, as a Python worker speaks it (docs/worker-protocol.md): every message is
one frame — ``u32 length · u8 version · u8 type · u32 id · u32 metaLength · meta JSON · body``,
integers little-endian — over the Unix socket the replica gives in ``ANYSERVE_WORKER_SOCKET``.

Everything about frames and message types is in this module, so a change to the protocol (a new
message, a RUN naming its handler) is made here.
"""
from __future__ import annotations

import json
import struct
from typing import Any, Dict, List, Optional, Tuple

VERSION = 1
PROTOCOL = 2  # a worker serves every handler of the app; handlers start on OPEN (src/execution/worker-protocol.ts)

# Types 1-5 mean what they mean on the gateway → replica hop; 16 and up exist only here.
RUN = 1  # → worker: a job. meta {mode, calls, sizes, h?, w?}; body: the task bodies one after another
RESULT = 2  # ← worker: a job's answer. meta {ct, hl?} (none for JSON), {items} (batch) or an error
CHUNK = 3  # ← worker: one streamed answer
END = 4  # ← worker: a stream's end. meta {} or an error
CANCEL = 5  # → worker: abort a job (meta null) or one item of a batch (meta {i})
HELLO = 16  # ← worker, first: {worker, key, pid, protocol}
READY = 17  # ← worker: the app loaded (handlers start on OPEN)
BOOT_FAILED = 18  # ← worker: it could not start. meta: an error; it exits next
STOP = 19  # → worker: finish the jobs it has, run the stop hooks, answer STOPPED, exit
STOPPED = 20  # ← worker
DEADLINE = 21  # ← worker: the request's `timeout` parameter lowered a task's deadline. {i, dl}
CREDIT = 22  # → worker: a stream job's consumer took n more bytes of its chunks (its RUN gave the window w). {n}
OPEN = 24  # → worker: start handler h (its unit's start hooks), after the jobs sent before. {h}
OPENED = 25  # ← worker: {h}, or {h, code, error} when its start hooks failed
CLOSE = 26  # → worker: stop handler h (its unit's stop hooks once no handler of the unit is open). {h}
CLOSED = 27  # ← worker: {h}
# The worker's own requests (ids in the worker's own space; the replica answers each once):
CALL = 32  # ← worker: call a capability through the replica's router. {job, q, timeout, ct, hl?}
CALL_RESULT = 33  # → worker: the call's answer (meta {ct?, hl?} or an error)
FETCH = 34  # ← worker: read an object the replica can reach and the worker cannot. {ref, op, job?}: get, stat, range, stream
FETCHED = 35  # → worker: meta {contentType, size, created, ...} or an error; body: the bytes (op get)
CALL_STREAM = 36  # ← worker: a streaming call through the replica. {job, q, timeout, ct, hl?, w}
CALL_CHUNK = 37  # → worker: one chunk of it (meta {ct?, hl?})
CALL_END = 38  # → worker: its end ({} or an error); exactly one per CALL_STREAM
CALL_CREDIT = 39  # ← worker: the handler took n more bytes of its chunks. {n}
CALL_CANCEL = 40  # ← worker: the handler stopped reading (or its job ended): cancel the upstream call
# FETCH op "range" {offset, length} is answered by FETCHED with those bytes; op "stream" {offset?, length?, w} by:
FETCH_CHUNK = 41  # → worker: bytes of the object, in order; the first one's meta is its info and {offset, length}
FETCH_END = 42  # → worker: the stream FETCH's end ({} or an error); exactly one per stream FETCH
FETCH_CREDIT = 43  # ← worker: the handler took n more bytes of its chunks. {n}
FETCH_CANCEL = 44  # ← worker: the handler stopped reading (or its job ended): the replica stops reading the object

#: The exit code of a worker that ran out of memory (memory_mb): its running job fails with WORKER_OUT_OF_MEMORY.
OOM_EXIT_CODE = 87

_HEADER = struct.Struct("<IBBII")
HEADER_BYTES = _HEADER.size  # 14
#: The largest frame accepted (a 64 MiB body plus room for meta), as the replica's limit.
MAX_FRAME = 64 * 1024 * 1024 + 64 * 1024

Frame = Tuple[int, int, Optional[Dict[str, Any]], bytes]


def encode(type_: int, id_: int, meta: Optional[Dict[str, Any]] = None, body: bytes = b"") -> bytes:
    m = b"" if meta is None else json.dumps(meta, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(10 + len(m) + len(body), VERSION, type_, id_, len(m)) + m + body


class ProtocolError(Exception):
    pass


class FrameReader:
    """Bytes in, whole frames out; a frame split across reads waits for the rest."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> List[Frame]:
        buf = self._buf
        buf += data
        frames: List[Frame] = []
        off = 0
        n = len(buf)
        while n - off >= 4:
            (length,) = struct.unpack_from("<I", buf, off)
            if length < 10 or length > self._max:
                raise ProtocolError(f"frame length {length} is out of range")
            if n - off < 4 + length:
                break
            _, version, type_, id_, meta_len = _HEADER.unpack_from(buf, off)
            if version != VERSION:
                raise ProtocolError(f"frame version {version}, expected {VERSION}")
            if meta_len > length - 10:
                raise ProtocolError(f"meta length {meta_len} runs past the frame")
            start = off + HEADER_BYTES
            meta = json.loads(bytes(buf[start : start + meta_len])) if meta_len else None
            body = bytes(buf[start + meta_len : off + 4 + length])
            frames.append((type_, id_, meta, body))
            off += 4 + length
        if off:
            del buf[:off]
        return frames


def error_meta(code: str, message: str, data: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    meta: Dict[str, Any] = {"code": code, "error": message}
    if data is not None:
        meta["data"] = data
    return meta


def answer_meta(content_type: str, header_length: Optional[int]) -> Optional[Dict[str, Any]]:
    """No meta for plain JSON (the commonest answer costs no JSON either way); else ``{ct, hl?}``."""
    if content_type == "application/json" and header_length is None:
        return None
    meta: Dict[str, Any] = {"ct": content_type}
    if header_length is not None:
        meta["hl"] = header_length
    return meta


def tasks_of(meta: Optional[Dict[str, Any]], body: bytes) -> Tuple[str, List[Dict[str, Any]], List[bytes], int]:
    """A RUN's mode, calls, bodies and handler index ``h``."""
    if not isinstance(meta, dict):
        raise ProtocolError("RUN meta needs a handler index h, and mode, calls and sizes")
    mode, calls, sizes = meta.get("mode"), meta.get("calls"), meta.get("sizes")
    if mode not in ("infer", "stream", "batch") or not isinstance(calls, list) or not isinstance(sizes, list) or len(calls) != len(sizes):
        raise ProtocolError("RUN meta needs mode, calls and sizes of equal length")
    bodies = []
    off = 0
    mv = memoryview(body)
    for n in sizes:
        bodies.append(bytes(mv[off : off + int(n)]))
        off += int(n)
    h = meta.get("h")
    if not isinstance(h, int) or isinstance(h, bool) or h < 0:
        raise ProtocolError(f"RUN meta needs a handler index h (a non-negative integer), got {h!r}")
    return mode, calls, bodies, h
