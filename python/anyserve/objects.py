"""The object store, in Python, on the very same directory format and ref strings as the TypeScript
store (``src/objects/``), so refs pass between Python and TypeScript replicas both ways.

- An object is ``<dir>/<id>.obj``: ``ANYSOBJ1`` · u32 big-endian header length · header JSON
  ``{"v":1,"id","contentType","created","ttl"?,"owner"?,"url"?}`` · the bytes. Writers write a temp
  file ``.tmp.<pid>.<host tag>.<random>.<id>`` and rename it into place, so readers never see part
  of an object.
- An id is ``^[A-Za-z0-9_-]{1,128}$`` (no ``.``, ``/``, ``%``): no spelling of an id names a file
  outside the store. Files are opened with ``O_NOFOLLOW`` and must be regular files with one link
  whose header names the same id.
- A ref is ``obj:<id>?size=<n>&type=<content type>[&owner=<replica>&url=<owner's base URL>]``
  (values percent-encoded as JavaScript's ``encodeURIComponent`` does).
- Values: ``bytes`` are stored as they are (``application/octet-stream``); numpy arrays as
  ``application/x-anyserve-array; dtype=FP32`` (and the other dtypes the TypeScript store knows);
  every JSON value (dict, list, str, int, float, bool, None) as JSON. ``get`` decodes by content
  type. Other values are refused (``INVALID_PARAMETER``) rather than pickled: a pickle is code,
  and objects may come from other replicas.
- In a worker, an object owned by another replica that is not in the local directory is fetched
  *by the replica* (the worker asks over its socket): the replica holds the token, the worker never.

Example::

    store = ObjectStore("/tmp/anyserve-objects")
    ref = store.create({"tokens": [1, 2, 3]})
    str(ref)            # 'obj:obj-5f1c…?size=18&type=application%2Fjson'
    store.get(ref)      # {'tokens': [1, 2, 3]}
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import socket
import stat as statmod
import struct
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import quote, unquote

from .errors import AnyServeError

DEFAULT_OBJECT_DIR = "/tmp/anyserve-objects"
OCTET_STREAM = "application/octet-stream"
JSON_TYPE = "application/json"
ARRAY_TYPE = "application/x-anyserve-array"

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_OWNER = re.compile(r"^[\w.-]{1,128}$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]{1,64}/[\w.+-]{1,64}(?:; ?[\w.+-]{1,64}=[\w.+-]{1,64}){0,4}$")
_OBJECT_NAME = re.compile(r"^([A-Za-z0-9_-]{1,128})\.obj$")
_TEMP_NAME = re.compile(r"^\.tmp\.(\d{1,10})\.([0-9a-f]{8})\.[0-9a-f]{12}\.[A-Za-z0-9_-]{1,128}$")
_MAGIC = b"ANYSOBJ1"
_MAX_HEADER = 16 * 1024
_MAX_REF = 4096
#: What encodeURIComponent leaves alone.
_URI_SAFE = "-_.!~*'()"
#: Temp names carry a host tag, so a pid is only judged dead on the machine that owns it.
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

#: numpy dtype names the TypeScript store keeps as typed arrays (``application/x-anyserve-array; dtype=…``).
_ARRAY_DTYPES = {
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float32": "FP32",
    "float64": "FP64",
}


class ObjectNotFoundError(AnyServeError, FileNotFoundError):
    """``OBJECT_NOT_FOUND``, and a ``FileNotFoundError`` as the seed's store raised."""

    def __init__(self, message: str) -> None:
        AnyServeError.__init__(self, "OBJECT_NOT_FOUND", message)


def _invalid(message: str) -> AnyServeError:
    return AnyServeError("OBJECT_REF_INVALID", message)


def _quote(v: Any) -> str:
    return json.dumps(v, default=repr)[:80]


def check_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise _invalid(f"object id: expected 1-128 characters of [A-Za-z0-9_-], got {_quote(value if isinstance(value, str) else repr(value))}")
    return value


def check_content_type(value: Any) -> str:
    if not isinstance(value, str) or not _CONTENT_TYPE.match(value):
        raise _invalid(f"content type: expected 'type/subtype' (ASCII, optional '; k=v' parameters), got {_quote(str(value))}")
    return value


def check_owner_url(value: Any) -> str:
    """An owner's base URL: http(s), host and port only (as the URL's origin, like the TypeScript check)."""
    m = re.match(r"^(https?)://([^/?#@\s]+)/?$", value, re.IGNORECASE) if isinstance(value, str) and len(value) <= 512 else None
    if not m:
        raise _invalid(f"owner url: expected http(s)://host:port, got {_quote(value)}")
    scheme, host = m.group(1).lower(), m.group(2).lower()
    default = ":80" if scheme == "http" else ":443"
    if host.endswith(default):
        host = host[: -len(default)]
    return f"{scheme}://{host}"


class ObjRef:
    """The name of a stored object (see the module doc for its string form)."""

    __slots__ = ("id", "size", "content_type", "owner", "url", "created_at", "path")

    def __init__(
        self,
        id: str,
        size: int = -1,
        content_type: str = OCTET_STREAM,
        owner: Optional[str] = None,
        url: Optional[str] = None,
        created_at: Optional[float] = None,
        path: Optional[str] = None,
    ) -> None:
        self.id = check_id(id)
        if isinstance(size, bool) or not isinstance(size, int) or size < -1:
            raise _invalid(f"size: expected a non-negative integer (or -1: unknown), got {size!r}")
        self.size = size
        self.content_type = check_content_type(content_type)
        if owner is not None and (not isinstance(owner, str) or not _OWNER.match(owner)):
            raise _invalid(f"owner: expected a replica id of 1-128 [A-Za-z0-9_.-], got {_quote(str(owner))}")
        self.owner = owner
        self.url = check_owner_url(url) if url is not None else None
        #: Epoch seconds, when known (the seed's field).
        self.created_at = created_at
        #: The file, when the ref came from a local store (the seed's field).
        self.path = path

    @property
    def key(self) -> str:
        """The key the object is stored under (its id; a custom ``key`` given to ``create`` is the id)."""
        return self.id

    @property
    def is_json(self) -> bool:
        return self.content_type == JSON_TYPE or self.content_type.startswith(JSON_TYPE + ";")

    def to_string(self) -> str:
        s = f"obj:{self.id}?size={self.size}&type={quote(self.content_type, safe=_URI_SAFE)}"
        if self.owner is not None:
            s += f"&owner={quote(self.owner, safe=_URI_SAFE)}"
        if self.url is not None:
            s += f"&url={quote(self.url, safe=_URI_SAFE)}"
        return s

    def __str__(self) -> str:
        return self.to_string()

    def to_dict(self) -> Dict[str, Any]:
        """The TypeScript store's JSON form (``id``, ``size``, ``contentType``, ``owner``, ``url``) plus the seed's names."""
        d: Dict[str, Any] = {"id": self.id, "size": self.size, "contentType": self.content_type}
        if self.owner is not None:
            d["owner"] = self.owner
        if self.url is not None:
            d["url"] = self.url
        d.update(key=self.id, content_type=self.content_type)
        if self.created_at is not None:
            d["created_at"] = self.created_at
        if self.path is not None:
            d["path"] = self.path
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ObjRef":
        if not isinstance(d, dict):
            raise _invalid(f"expected an ObjRef's dict, got {type(d).__name__}")
        ident = d.get("id", d.get("key"))
        return cls(
            ident,  # type: ignore[arg-type]
            d.get("size", -1),
            d.get("contentType", d.get("content_type", OCTET_STREAM)),
            d.get("owner"),
            d.get("url"),
            d.get("created_at"),
            None,
        )

    @classmethod
    def from_string(cls, text: str) -> "ObjRef":
        """Parses the ``obj:`` form strictly; anything else is ``OBJECT_REF_INVALID``."""
        if not isinstance(text, str):
            raise _invalid(f"expected a string, got {type(text).__name__}")
        if len(text) > _MAX_REF:
            raise _invalid(f"ref is {len(text)} characters: at most {_MAX_REF}")
        if not text.startswith("obj:"):
            raise _invalid(f"expected 'obj:<id>?size=…&type=…', got {_quote(text)}")
        q = text.find("?")
        if q < 0:
            raise _invalid(f"ref {_quote(text)} has no '?size=…&type=…'")
        ident = check_id(text[4:q])
        fields: Dict[str, str] = {}
        for part in text[q + 1 :].split("&"):
            name, _, value = part.partition("=")
            if name not in ("size", "type", "owner", "url"):
                raise _invalid(f"unknown field {_quote(name)} in ref")
            if name in fields:
                raise _invalid(f"field '{name}' appears twice in ref")
            try:
                fields[name] = unquote(value, errors="strict")
            except UnicodeDecodeError:
                raise _invalid(f"field '{name}' is not valid percent-encoding") from None
        size = fields.get("size")
        if size is None or not re.match(r"^(?:-1|\d{1,16})$", size):
            raise _invalid(f"size: expected a non-negative integer (or -1: unknown), got {_quote(size)}")
        if "type" not in fields:
            raise _invalid("type: missing")
        return cls(ident, int(size), fields["type"], fields.get("owner"), fields.get("url"))

    @classmethod
    def parse(cls, value: Any, store_dir: Optional[str] = None) -> "ObjRef":
        """Every form a ref travels in: an ObjRef, its string, its dict (or that dict as JSON text), a
        bare id, bytes or a BYTES tensor holding one of those, or a path to an object of the store."""
        if isinstance(value, ObjRef):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                return cls.parse(bytes(value).decode("utf-8"), store_dir)
            except UnicodeDecodeError:
                raise _invalid("ref bytes are not UTF-8") from None
        if hasattr(value, "datatype") and hasattr(value, "data"):  # a tensor (request.inputs["image"])
            items = value.data
            if len(items) != 1:
                raise _invalid(f"tensor '{getattr(value, 'name', '?')}' holds {len(items)} elements, expected one ref")
            return cls.parse(items[0], store_dir)
        if isinstance(value, dict):
            return cls.from_dict(value)
        if isinstance(value, str):
            if value.startswith("obj:"):
                return cls.from_string(value)
            if value.startswith("{"):
                if len(value) > _MAX_REF:
                    raise _invalid(f"ref is {len(value)} characters: at most {_MAX_REF}")
                try:
                    d = json.loads(value)
                except ValueError:
                    raise _invalid(f"ref {_quote(value)} is not valid JSON") from None
                return cls.from_dict(d)
            if "/" in value and store_dir is not None:
                return cls(_id_of_path(value, store_dir))
            return cls(check_id(value))
        raise _invalid(f"expected an ObjRef, its string or its JSON form, got {type(value).__name__}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjRef) and self.to_string() == other.to_string()

    def __hash__(self) -> int:
        return hash(self.to_string())

    def describe(self) -> str:
        size = "size unknown" if self.size < 0 else f"{self.size} B"
        return f"object {self.id} ({size}, {self.content_type})" + (f" owned by {self.owner}" if self.owner else "")

    def __repr__(self) -> str:
        return f"ObjRef<{self.describe()}>"


def _id_of_path(path: str, store_dir: str) -> str:
    """The id of a file path naming an object of this store — never a path outside it."""
    real_dir = os.path.realpath(store_dir)
    name = os.path.basename(path)
    m = _OBJECT_NAME.match(name)
    if not m or os.path.realpath(os.path.dirname(os.path.abspath(path))) != real_dir:
        raise _invalid(f"path {_quote(path)} is not an object of the store at {store_dir}")
    return m.group(1)


# ── values ↔ bytes ──


def encode_value(data: Any, content_type: Optional[str] = None) -> Tuple[bytes, str]:
    if content_type is not None:
        check_content_type(content_type)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), content_type or OCTET_STREAM
    if type(data).__module__ == "numpy" and hasattr(data, "dtype") and hasattr(data, "tobytes"):
        dtype = _ARRAY_DTYPES.get(data.dtype.name)
        raw = data.astype(data.dtype.newbyteorder("<")).tobytes()
        return raw, content_type or (f"{ARRAY_TYPE}; dtype={dtype}" if dtype else OCTET_STREAM)
    if isinstance(data, str) and content_type is not None and content_type.startswith("text/"):
        return data.encode("utf-8"), content_type
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise AnyServeError("INVALID_PARAMETER", f"objects.create: expected bytes or a JSON value, got {type(data).__name__}: {err}") from None
    return text.encode("utf-8"), content_type or JSON_TYPE


def _json_default(v: Any) -> Any:
    if isinstance(v, ObjRef):
        return v.to_string()
    if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def decode_value(raw: bytes, content_type: str, ident: str) -> Any:
    if content_type == JSON_TYPE or content_type.startswith(JSON_TYPE + ";"):
        try:
            return json.loads(raw)
        except ValueError as err:
            raise AnyServeError("INVALID_JSON", f"object {ident} does not hold JSON: {err}") from None
    if content_type.startswith("text/"):
        return raw.decode("utf-8")
    m = re.match(r"^application/x-anyserve-array; ?dtype=(\w+)$", content_type)
    if m and m.group(1) in _ARRAY_DTYPES.values():
        from .datatypes import DATATYPES, unpack_values

        dt = m.group(1)
        size = DATATYPES[dt].size
        if len(raw) % size:
            raise AnyServeError("INVALID_TENSOR", f"object {ident}: {len(raw)} bytes is not a whole number of {dt} elements")
        try:
            import numpy as np

            np_name = {v: k for k, v in _ARRAY_DTYPES.items()}[dt]
            return np.frombuffer(raw, dtype=np.dtype(np_name).newbyteorder("<")).copy()
        except ImportError:
            return unpack_values(dt, raw)
    return raw


# ── the store ──

#: Reads an object the store cannot reach itself (a worker: through its replica). ``(ref, op, **{offset, length})``.
Fetcher = Callable[..., Tuple[Dict[str, Any], bytes]]
#: The same as a stream: ``(ref, offset, length)`` → an iterator of bytes with ``opened()`` and ``close()``.
Streamer = Callable[[str, Optional[int], Optional[int]], Any]


class ObjectStore:
    """``context.objects``: objects in a directory shared with the replica (and other replicas)."""

    def __init__(
        self,
        base_path: str = DEFAULT_OBJECT_DIR,
        *,
        max_object_bytes: int = 2 * 1024**3,
        max_total_bytes: int = 10 * 1024**3,
        default_ttl: Optional[float] = None,
        owner: Optional[Dict[str, str]] = None,
        fetcher: Optional[Fetcher] = None,
        file_mode: int = 0o600,
        streamer: Optional[Streamer] = None,
    ) -> None:
        self.base_path = os.path.abspath(base_path)
        os.makedirs(self.base_path, mode=0o700, exist_ok=True)
        self._root = os.path.realpath(self.base_path)
        self.max_object_bytes = max_object_bytes
        self.max_total_bytes = max_total_bytes
        self.default_ttl = default_ttl
        #: ``{"replicaId", "url"?}``: refs made here name this replica.
        self.owner = owner
        self._fetch = fetcher
        self._stream = streamer
        self._mode = file_mode
        self._usage: Tuple[float, int] = (0.0, 0)
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Dict[str, Any], fetcher: Optional[Fetcher] = None, streamer: Optional[Streamer] = None) -> "ObjectStore":
        """The replica's store as a worker opens it (``ANYSERVE_WORKER_OBJECTS``: the TypeScript store's ``workerConfig()``)."""
        return cls(
            config.get("dir") or DEFAULT_OBJECT_DIR,
            max_object_bytes=int(config.get("maxObjectBytes") or 2 * 1024**3),
            max_total_bytes=int(config.get("maxTotalBytes") or 10 * 1024**3),
            default_ttl=config.get("defaultTtl"),
            owner=config.get("owner"),
            fetcher=fetcher,
            file_mode=int(config.get("fileMode") or 0o600),
            streamer=streamer,
        )

    @property
    def path(self) -> str:
        return self.base_path

    # ── writing ──

    def create(self, data: Any, key: Optional[str] = None, content_type: Optional[str] = None, ttl: Optional[float] = None) -> ObjRef:
        """Stores ``data`` (bytes as they are, other values as JSON) under ``key`` (default ``obj-<uuid>``)."""
        raw, ctype = encode_value(data, content_type)
        ident = check_id(key) if key is not None else f"obj-{uuid.uuid4()}"
        ttl = ttl if ttl is not None else self.default_ttl
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0 and ttl != float("inf")):
            raise AnyServeError("INVALID_PARAMETER", f"ttl: expected a positive number of seconds, got {ttl!r}")
        if len(raw) > self.max_object_bytes:
            raise AnyServeError("OBJECT_TOO_LARGE", f"object {ident} is {len(raw)} bytes: the limit is {self.max_object_bytes} bytes per object")
        self._room(len(raw))
        created = int(time.time() * 1000)
        header: Dict[str, Any] = {"v": 1, "id": ident, "contentType": ctype, "created": created}
        if ttl is not None:
            header["ttl"] = ttl
        if self.owner and self.owner.get("replicaId"):
            header["owner"] = self.owner["replicaId"]
            if self.owner.get("url"):
                header["url"] = self.owner["url"]
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        final = os.path.join(self._root, f"{ident}.obj")
        temp = os.path.join(self._root, f".tmp.{os.getpid()}.{HOST_TAG}.{os.urandom(6).hex()}.{ident}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, self._mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + struct.pack(">I", len(head)) + head)
                f.write(raw)
            os.rename(temp, final)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        with self._lock:
            at, used = self._usage
            self._usage = (at, used + len(raw))
        return ObjRef(
            ident,
            len(raw),
            ctype,
            header.get("owner"),
            header.get("url"),
            created / 1000,
            final,
        )

    def _room(self, needed: int) -> None:
        with self._lock:
            at, used = self._usage
            if time.time() - at > 1.0 or used + needed > self.max_total_bytes:
                used = self._disk_usage()
                self._usage = (time.time(), used)
        if used + needed > self.max_total_bytes:
            self._remove_where(lambda h, now: _expired(h, now))
            used = self._disk_usage()
            if used + needed > self.max_total_bytes:
                raise AnyServeError(
                    "OBJECT_STORE_FULL",
                    f"object store {self.base_path} is full: {needed} bytes needed, {max(0, self.max_total_bytes - used)} left under its {self.max_total_bytes}-byte cap",
                )

    def _disk_usage(self) -> int:
        total = 0
        for e in os.scandir(self._root):
            if _OBJECT_NAME.match(e.name) or _TEMP_NAME.match(e.name):
                try:
                    total += e.stat(follow_symlinks=False).st_size
                except OSError:
                    pass
        return total

    # ── reading ──

    def get(self, ref: Any) -> Any:
        """The object's value, decoded by content type (JSON → value, text → str, arrays → numpy/list, else bytes)."""
        r = ObjRef.parse(ref, self._root)
        header, raw = self._read(r)
        return decode_value(raw, header["contentType"], r.id)

    def get_bytes(self, ref: Any) -> bytes:
        """The object's bytes as stored."""
        return self._read(ObjRef.parse(ref, self._root))[1]

    def get_range(self, ref: Any, offset: int, length: int) -> bytes:
        """``length`` bytes of the object at ``offset``, and only those are read (from the owner too,
        for an object of another replica's). Outside the object: ``OBJECT_RANGE_INVALID``."""
        r = ObjRef.parse(ref, self._root)
        _check_span_types(offset, length)
        opened = self._open_local(r, whole=False, keep=True)
        if opened is None:
            return self._remote(r, "range", offset=offset, length=length)[1]
        header, size, f = opened
        with f:
            start, n = check_span(r.id, size, offset, length)
            f.seek(start, os.SEEK_CUR)
            return f.read(n)

    def open_stream(self, ref: Any, offset: int = 0, length: Optional[int] = None, chunk_size: int = 1024 * 1024) -> Any:
        """The object's bytes (or ``length`` bytes at ``offset``; ``None``: to the end) as an iterator of
        ``bytes`` chunks, never whole in memory; ``close()`` it (or use ``with``) when leaving early. An
        object of another replica's comes through the replica within a window: what is not read is not
        fetched. Outside the object: ``OBJECT_RANGE_INVALID``."""
        r = ObjRef.parse(ref, self._root)
        _check_span_types(offset, length)
        opened = self._open_local(r, whole=False, keep=True)
        if opened is None:
            self._foreign(r)
            if self._stream is None:
                raise self._unreachable(r)
            whole = offset == 0 and length is None
            return self._stream(r.to_string(), None if whole else offset, None if whole else length).opened()
        header, size, f = opened
        try:
            start, n = check_span(r.id, size, offset, length) if size > 0 or offset or length is not None else (0, 0)
            f.seek(start, os.SEEK_CUR)
        except BaseException:
            f.close()
            raise
        return LocalStream(f, n, chunk_size)

    def stat(self, ref: Any) -> Dict[str, Any]:
        """``{ref, id, size, contentType, created, ttl?, owner?, url?}`` of a local or remote object."""
        r = ObjRef.parse(ref, self._root)
        opened = self._open_local(r, whole=False)
        if opened is not None:
            header, size, _ = opened
            return _info(header, size, self._root)
        meta, _ = self._remote(r, "stat")
        return _info(meta, int(meta.get("size", -1)), None)

    def exists(self, ref: Any) -> bool:
        try:
            self.stat(ref)
            return True
        except AnyServeError as err:
            if err.code in ("OBJECT_NOT_FOUND", "OBJECT_EXPIRED"):
                return False
            raise

    def _read(self, r: ObjRef) -> Tuple[Dict[str, Any], bytes]:
        opened = self._open_local(r, whole=True)
        if opened is not None:
            header, _, raw = opened
            return header, raw  # type: ignore[return-value]
        return self._remote(r, "get")

    def aopen_stream(self, ref: Any, offset: int = 0, length: Optional[int] = None, chunk_size: int = 1024 * 1024) -> "AsyncObjectStream":
        """:meth:`open_stream` for ``async def`` handlers: ``async for chunk in context.objects.aopen_stream(ref)``.
        The stream opens on the first chunk asked for; each chunk is awaited without holding the event loop."""
        return AsyncObjectStream(lambda: self.open_stream(ref, offset, length, chunk_size))

    def _foreign(self, r: ObjRef) -> None:
        """Not here: 404 unless the ref names another owner."""
        own = self.owner.get("replicaId") if self.owner else None
        if r.owner is None or r.owner == own:
            raise ObjectNotFoundError(f"object {r.id} is not in the store at {self.base_path}")

    def _unreachable(self, r: ObjRef) -> AnyServeError:
        return AnyServeError(
            "OBJECT_REF_INVALID",
            f"object {r.id} is owned by '{r.owner}', which this store cannot reach (a worker asks its replica; a standalone store reads local objects only)",
        )

    def _remote(self, r: ObjRef, op: str, **extra: Any) -> Tuple[Dict[str, Any], bytes]:
        self._foreign(r)
        if self._fetch is None:
            raise self._unreachable(r)
        try:
            return self._fetch(r.to_string(), op, **extra)
        except AnyServeError as err:
            if err.code == "OBJECT_NOT_FOUND" and not isinstance(err, ObjectNotFoundError):
                raise ObjectNotFoundError(err.message) from None
            raise

    def _open_local(self, r: ObjRef, whole: bool, keep: bool = False) -> Optional[Tuple[Dict[str, Any], int, Any]]:
        """The object's header, size, and its bytes (``whole``) or the file positioned at them (``keep``: the caller closes it)."""
        path = os.path.join(self._root, f"{r.id}.obj")
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK)
        except OSError as err:
            if err.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if err.errno in (errno.ELOOP, errno.EMLINK):
                raise _refused(r.id, "is a symbolic link") from None
            raise
        f = os.fdopen(fd, "rb")
        try:
            st = os.fstat(f.fileno())
            if not statmod.S_ISREG(st.st_mode):
                raise _refused(r.id, "is not a regular file")
            if st.st_nlink != 1:
                raise _refused(r.id, "has other hard links")
            prefix = f.read(12)
            if len(prefix) < 12 or prefix[:8] != _MAGIC:
                raise _refused(r.id, "is not an anyserve object")
            (length,) = struct.unpack(">I", prefix[8:])
            if length > _MAX_HEADER:
                raise _refused(r.id, "has a corrupt header")
            try:
                header = json.loads(f.read(length))
                if header.get("v") != 1 or not isinstance(header.get("created"), (int, float)):
                    raise ValueError("version")
                check_id(header.get("id"))
                check_content_type(header.get("contentType"))
            except (ValueError, AnyServeError):
                raise _refused(r.id, "has a corrupt header") from None
            if header["id"] != r.id:
                raise _refused(r.id, "has a header naming another object")
            # Same key, another owner: another object, not a copy of this one.
            if r.owner is not None and header.get("owner") is not None and header["owner"] != r.owner:
                return None
            if _expired(header, time.time() * 1000):
                expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((header["created"] + header["ttl"] * 1000) / 1000))
                raise AnyServeError("OBJECT_EXPIRED", f"object {r.id} expired at {expires}")
            size = st.st_size - 12 - length
            if keep:
                kept, f = f, None
                return header, size, kept
            return header, size, f.read() if whole else None
        finally:
            if f is not None:
                f.close()

    # ── housekeeping ──

    def delete(self, ref: Any) -> bool:
        """Removes the local object (or local copy); never reaches the owner. False when there was none."""
        r = ObjRef.parse(ref, self._root)
        try:
            os.unlink(os.path.join(self._root, f"{r.id}.obj"))
            return True
        except FileNotFoundError:
            return False

    def list_objects(self) -> List[ObjRef]:
        """Refs of the objects in this store that have not expired."""
        out = []
        now = time.time() * 1000
        for ident, header, size in self._scan():
            if not _expired(header, now):
                out.append(_ref_of(header, size, self._root))
        return out

    def cleanup(self, max_age_seconds: float = 3600) -> int:
        """Removes objects created ``max_age_seconds`` ago or earlier, and expired ones. Returns how many."""
        if not (isinstance(max_age_seconds, (int, float)) and max_age_seconds >= 0):
            raise AnyServeError("INVALID_PARAMETER", f"cleanup: expected max_age_seconds >= 0, got {max_age_seconds!r}")
        cutoff = time.time() * 1000 - max_age_seconds * 1000
        return self._remove_where(lambda h, now: h["created"] <= cutoff or _expired(h, now))

    def clear(self) -> int:
        """Removes every object. Returns how many."""
        return self._remove_where(lambda h, now: True)

    def _remove_where(self, match: Callable[[Dict[str, Any], float], bool]) -> int:
        now = time.time() * 1000
        removed = 0
        for ident, header, _ in self._scan():
            if match(header, now):
                try:
                    os.unlink(os.path.join(self._root, f"{ident}.obj"))
                    removed += 1
                except FileNotFoundError:
                    pass
        self._remove_stale_temps()
        with self._lock:
            self._usage = (0.0, 0)
        return removed

    def _remove_stale_temps(self, stale_seconds: float = 3600) -> None:
        now = time.time()
        for e in os.scandir(self._root):
            m = _TEMP_NAME.match(e.name)
            if not m:
                continue
            dead = m.group(2) == HOST_TAG and not _pid_alive(int(m.group(1)))
            try:
                idle = now - e.stat(follow_symlinks=False).st_mtime > stale_seconds
            except OSError:
                continue
            if dead or idle:
                try:
                    os.unlink(e.path)
                except OSError:
                    pass

    def _scan(self) -> List[Tuple[str, Dict[str, Any], int]]:
        out = []
        for e in os.scandir(self._root):
            m = _OBJECT_NAME.match(e.name)
            if not m:
                continue
            try:
                opened = self._open_local(ObjRef(m.group(1)), whole=False)
            except AnyServeError as err:
                if err.code != "OBJECT_EXPIRED":
                    continue
                opened = self._header_only(m.group(1))
            if opened is not None:
                out.append((m.group(1), opened[0], opened[1]))
        return out

    def _header_only(self, ident: str) -> Optional[Tuple[Dict[str, Any], int, None]]:
        try:
            with open(os.path.join(self._root, f"{ident}.obj"), "rb") as f:
                prefix = f.read(12)
                (length,) = struct.unpack(">I", prefix[8:])
                header = json.loads(f.read(length))
                return header, os.fstat(f.fileno()).st_size - 12 - length, None
        except (OSError, ValueError, struct.error):
            return None


class LocalStream:
    """A local object's bytes (or a span of them) in chunks, read from its file as they are asked for."""

    #: Bytes read ahead and not taken: none (the file is read on demand).
    buffered = 0

    def __init__(self, f: Any, left: int, chunk_size: int) -> None:
        self._f = f
        self._left = left
        self._chunk = max(1, int(chunk_size))

    def __iter__(self) -> "LocalStream":
        return self

    def __next__(self) -> bytes:
        if self._left <= 0 or self._f.closed:
            self.close()
            raise StopIteration
        data = self._f.read(min(self._chunk, self._left))
        if not data:
            self.close()
            raise AnyServeError("OBJECT_NOT_FOUND", "the object's file ended early")
        self._left -= len(data)
        return data

    def read_all(self) -> bytes:
        return b"".join(self)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "LocalStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncObjectStream:
    """An object stream for ``async def`` handlers: opening and each chunk run in the loop's executor
    (in the handler's context, so the replica still binds the read to its job); ``aclose()``, ``async
    with`` and cancelling the task close it."""

    def __init__(self, open_: Callable[[], Any]) -> None:
        self._open = open_
        self._s: Any = None
        self._closed = False

    def __aiter__(self) -> "AsyncObjectStream":
        return self

    async def __anext__(self) -> bytes:
        import asyncio
        import contextvars

        loop = asyncio.get_running_loop()
        try:
            if self._s is None:
                if self._closed:
                    raise StopAsyncIteration
                self._s = await loop.run_in_executor(None, contextvars.copy_context().run, self._open)
            chunk = await loop.run_in_executor(None, contextvars.copy_context().run, next, self._s, None)
        except asyncio.CancelledError:
            self.close()
            raise
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    @property
    def buffered(self) -> int:
        return self._s.buffered if self._s is not None else 0

    def close(self) -> None:
        self._closed = True
        if self._s is not None:
            self._s.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> "AsyncObjectStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


def _check_span_types(offset: Any, length: Any) -> None:
    for name, v in (("offset", offset), ("length", length)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise AnyServeError("OBJECT_RANGE_INVALID", f"range {name}: expected an integer number of bytes, got {_quote(repr(v))}")


def check_span(ident: str, size: int, offset: Any, length: Any) -> Tuple[int, int]:
    """``(offset, length)`` checked against the object's size (``length`` None: to the end), with the
    message the TypeScript store gives (objects/info.ts): ``OBJECT_RANGE_INVALID`` naming offset, length and size."""
    o = 0 if offset is None else offset
    n = size - o if length is None and isinstance(o, int) else length
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (o, n)) and o >= 0 and n >= 1 and o + n <= size
    if not ok:
        show = lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else json.dumps(v, default=repr)[:40]  # noqa: E731
        raise AnyServeError(
            "OBJECT_RANGE_INVALID",
            f"range (offset {show(o)}, length {show(n)}) is outside object {ident} ({size} bytes): expected offset >= 0, length >= 1 and offset + length <= {size}",
            {"size": size},
        )
    return o, n


def _refused(ident: str, why: str) -> AnyServeError:
    return ObjectNotFoundError(f"object {ident} cannot be read: its file {why}")


def _expired(header: Dict[str, Any], now_ms: float) -> bool:
    ttl = header.get("ttl")
    return isinstance(ttl, (int, float)) and now_ms >= header["created"] + ttl * 1000


def _ref_of(header: Dict[str, Any], size: int, root: Optional[str]) -> ObjRef:
    return ObjRef(
        header["id"],
        size,
        header["contentType"],
        header.get("owner"),
        header.get("url"),
        header["created"] / 1000,
        os.path.join(root, f"{header['id']}.obj") if root else None,
    )


def _info(header: Dict[str, Any], size: int, root: Optional[str]) -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "ref": _ref_of(header, size, root),
        "id": header["id"],
        "size": size,
        "contentType": header["contentType"],
        "created": header["created"],
    }
    for k in ("ttl", "owner", "url"):
        if header.get(k) is not None:
            info[k] = header[k]
    if "ttl" in info:
        info["expiresAt"] = header["created"] + header["ttl"] * 1000
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


RefLike = Union[ObjRef, str, bytes, Dict[str, Any]]

__all__ = ["ObjectStore", "ObjRef", "ObjectNotFoundError", "encode_value", "decode_value", "DEFAULT_OBJECT_DIR", "HOST_TAG"]
