"""A small protobuf (proto3) runtime in the standard library: enough of the ``protobuf`` package's
message API for the OIP messages — keyword constructors, scalar fields, nested messages created on
first access, repeated fields (``append``/``extend``/``add()``/iteration/``len``), maps of messages,
oneofs, ``SerializeToString`` / ``ParseFromString`` / ``FromString``, ``HasField``, ``CopyFrom``.

Wire format: varints, 64/32-bit little-endian fixed fields, length-delimited fields; repeated
numeric fields are written packed and read packed or not; unknown fields are skipped. Malformed
bytes raise :class:`DecodeError` (which anyserve answers with ``INVALID_PROTOBUF``).
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type


class DecodeError(Exception):
    """The bytes are not a valid encoding of the message."""


# kind → (wire type, default)
_KINDS: Dict[str, Tuple[int, Any]] = {
    "string": (2, ""),
    "bytes": (2, b""),
    "bool": (0, False),
    "int32": (0, 0),
    "int64": (0, 0),
    "uint32": (0, 0),
    "uint64": (0, 0),
    "float": (5, 0.0),
    "double": (1, 0.0),
    "message": (2, None),
    "map": (2, None),
}


class Field:
    __slots__ = ("name", "number", "kind", "repeated", "message", "oneof")

    def __init__(self, name: str, number: int, kind: str, repeated: bool = False, message: Any = None, oneof: Optional[str] = None) -> None:
        self.name = name
        self.number = number
        self.kind = kind
        self.repeated = repeated
        #: The message class (a class or a zero-argument function returning one, for forward references).
        self.message = message
        self.oneof = oneof

    def message_class(self) -> Type["Message"]:
        m = self.message
        return m if isinstance(m, type) else m()


class RepeatedScalarContainer(list):
    """A repeated scalar field: a list."""


class RepeatedCompositeContainer(list):
    """A repeated message field: a list with ``add(**fields)``."""

    def __init__(self, cls: Type["Message"], items: Iterable["Message"] = ()) -> None:
        super().__init__(items)
        self._cls = cls

    def add(self, **fields: Any) -> "Message":
        m = self._cls(**fields)
        self.append(m)
        return m


class MessageMap(dict):
    """A ``map<string, Message>`` field: missing keys are created on access, as protobuf does."""

    def __init__(self, cls: Type["Message"], items: Any = ()) -> None:
        super().__init__(items)
        self._cls = cls

    def __missing__(self, key: str) -> "Message":
        m = self._cls()
        self[key] = m
        return m

    def get_or_create(self, key: str) -> "Message":
        return self[key]


# ── encoding helpers ──


def _varint(n: int, out: bytearray) -> None:
    if n < 0:
        n += 1 << 64
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _read_varint(buf: bytes, pos: int, end: int) -> Tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _signed(n: int, bits: int) -> int:
    n &= (1 << 64) - 1
    if bits == 32:
        n &= 0xFFFFFFFF
        return n - (1 << 32) if n >= 1 << 31 else n
    return n - (1 << 64) if n >= 1 << 63 else n


def _encode_scalar(kind: str, v: Any, out: bytearray) -> None:
    if kind in ("int32", "int64", "uint32", "uint64"):
        _varint(int(v), out)
    elif kind == "bool":
        out.append(1 if v else 0)
    elif kind == "float":
        out += struct.pack("<f", v)
    elif kind == "double":
        out += struct.pack("<d", v)
    else:
        raise AssertionError(kind)


class Message:
    """Base of generated messages; subclasses set ``FIELDS`` (a tuple of :class:`Field`)."""

    FIELDS: Tuple[Field, ...] = ()
    _by_name: Dict[str, Field]
    _by_number: Dict[int, Field]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._by_name = {f.name: f for f in cls.FIELDS}
        cls._by_number = {f.number: f for f in cls.FIELDS}

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_v", {})
        for name, value in fields.items():
            f = self._field(name)
            if f.repeated or f.kind == "map":
                container = getattr(self, name)
                if f.kind == "map":
                    for k, v in dict(value).items():
                        container[k] = _as_message(f.message_class(), v)
                elif f.kind == "message":
                    container.extend(_as_message(f.message_class(), v) for v in value)
                else:
                    container.extend(value)
            elif f.kind == "message":
                self._v[name] = _as_message(f.message_class(), value)
            else:
                setattr(self, name, value)

    @classmethod
    def _field(cls, name: str) -> Field:
        f = cls._by_name.get(name)
        if f is None:
            raise AttributeError(f"{cls.__name__} has no field {name!r}")
        return f

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        f = type(self)._by_name.get(name)
        if f is None:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        v = self._v.get(name)
        if v is not None:
            return v
        if f.kind == "map":
            v = MessageMap(f.message_class())
        elif f.repeated:
            v = RepeatedCompositeContainer(f.message_class()) if f.kind == "message" else RepeatedScalarContainer()
        elif f.kind == "message":
            v = f.message_class()()
        else:
            return _KINDS[f.kind][1]
        self._v[name] = v
        return v

    def __setattr__(self, name: str, value: Any) -> None:
        f = self._field(name)
        if f.repeated or f.kind in ("map", "message"):
            raise AttributeError(f"assignment to the {f.kind if not f.repeated else 'repeated'} field {name!r} is not allowed; modify it in place")
        if f.kind == "string" and not isinstance(value, str):
            raise TypeError(f"{name}: expected str, got {type(value).__name__}")
        if f.kind == "bytes" and not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"{name}: expected bytes, got {type(value).__name__}")
        if f.oneof:
            for other in self.FIELDS:
                if other.oneof == f.oneof and other.name != name:
                    self._v.pop(other.name, None)
        self._v[name] = bytes(value) if f.kind == "bytes" else value

    def HasField(self, name: str) -> bool:  # noqa: N802 (protobuf's name)
        f = self._field(name)
        if f.repeated or f.kind == "map":
            raise ValueError(f"{name} is repeated; HasField does not apply")
        return name in self._v

    def WhichOneof(self, group: str) -> Optional[str]:  # noqa: N802
        for f in self.FIELDS:
            if f.oneof == group and f.name in self._v:
                return f.name
        return None

    def ClearField(self, name: str) -> None:  # noqa: N802
        self._field(name)
        self._v.pop(name, None)

    def ListFields(self) -> List[Tuple[Field, Any]]:  # noqa: N802
        return [(f, self._v[f.name]) for f in self.FIELDS if f.name in self._v and _present(f, self._v[f.name])]

    def CopyFrom(self, other: "Message") -> None:  # noqa: N802
        if type(other) is not type(self):
            raise TypeError(f"CopyFrom: expected {type(self).__name__}, got {type(other).__name__}")
        self._v.clear()
        self.ParseFromString(other.SerializeToString())

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.SerializeToString() == other.SerializeToString()  # type: ignore[union-attr]

    def __repr__(self) -> str:
        parts = [f"{f.name}={v!r}" for f, v in self.ListFields()]
        return f"{type(self).__name__}({', '.join(parts)})"

    # ── wire ──

    def SerializeToString(self) -> bytes:  # noqa: N802
        out = bytearray()
        self._encode(out)
        return bytes(out)

    def _encode(self, out: bytearray) -> None:
        for f in self.FIELDS:
            v = self._v.get(f.name)
            if v is None:
                continue
            num = f.number
            if f.kind == "map":
                for k, m in v.items():
                    entry = bytearray()
                    kb = k.encode("utf-8")
                    entry.append(0x0A)
                    _varint(len(kb), entry)
                    entry += kb
                    body = m.SerializeToString()
                    entry.append(0x12)
                    _varint(len(body), entry)
                    entry += body
                    _varint(num << 3 | 2, out)
                    _varint(len(entry), out)
                    out += entry
            elif f.kind == "message":
                for m in v if f.repeated else (v,):
                    body = m.SerializeToString()
                    _varint(num << 3 | 2, out)
                    _varint(len(body), out)
                    out += body
            elif f.kind in ("string", "bytes"):
                for item in v if f.repeated else (v,):
                    b = item.encode("utf-8") if f.kind == "string" else item
                    if not f.repeated and not b and not f.oneof:
                        continue
                    _varint(num << 3 | 2, out)
                    _varint(len(b), out)
                    out += b
            elif f.repeated:
                if not v:
                    continue
                packed = bytearray()
                for item in v:
                    _encode_scalar(f.kind, item, packed)
                _varint(num << 3 | 2, out)
                _varint(len(packed), out)
                out += packed
            else:
                if not v and not f.oneof:
                    continue
                _varint(num << 3 | _KINDS[f.kind][0], out)
                _encode_scalar(f.kind, v, out)

    def ParseFromString(self, data: bytes) -> int:  # noqa: N802
        buf = bytes(data)
        self._decode(buf, 0, len(buf))
        return len(buf)

    @classmethod
    def FromString(cls, data: bytes) -> "Message":  # noqa: N802
        m = cls()
        m.ParseFromString(data)
        return m

    def _decode(self, buf: bytes, pos: int, end: int) -> None:
        by_number = type(self)._by_number
        while pos < end:
            tag, pos = _read_varint(buf, pos, end)
            num, wt = tag >> 3, tag & 7
            if num == 0:
                raise DecodeError("field number 0")
            f = by_number.get(num)
            if wt == 2:
                length, pos = _read_varint(buf, pos, end)
                if length > end - pos:
                    raise DecodeError(f"field {num}: length {length} runs past the end")
                chunk_end = pos + length
                if f is not None:
                    self._read_delimited(f, buf, pos, chunk_end)
                pos = chunk_end
            elif wt == 0:
                v, pos = _read_varint(buf, pos, end)
                if f is not None:
                    self._store(f, _scalar_of_varint(f, v))
            elif wt == 1:
                if end - pos < 8:
                    raise DecodeError("truncated fixed64")
                if f is not None and f.kind == "double":
                    self._store(f, struct.unpack_from("<d", buf, pos)[0])
                pos += 8
            elif wt == 5:
                if end - pos < 4:
                    raise DecodeError("truncated fixed32")
                if f is not None and f.kind == "float":
                    self._store(f, struct.unpack_from("<f", buf, pos)[0])
                pos += 4
            else:
                raise DecodeError(f"field {num}: wire type {wt} is not supported")

    def _store(self, f: Field, v: Any) -> None:
        if f.repeated:
            getattr(self, f.name).append(v)
        else:
            setattr(self, f.name, v)

    def _read_delimited(self, f: Field, buf: bytes, pos: int, end: int) -> None:
        kind = f.kind
        if kind == "string":
            try:
                self._store(f, buf[pos:end].decode("utf-8"))
            except UnicodeDecodeError:
                raise DecodeError(f"field {f.name}: invalid UTF-8") from None
        elif kind == "bytes":
            self._store(f, buf[pos:end])
        elif kind == "message":
            m = f.message_class()()
            m._decode(buf, pos, end)
            if f.repeated:
                getattr(self, f.name).append(m)
            else:
                self._v[f.name] = m
        elif kind == "map":
            key, value = "", None
            cls = f.message_class()
            while pos < end:
                tag, pos = _read_varint(buf, pos, end)
                if tag & 7 != 2:
                    raise DecodeError(f"map {f.name}: unexpected wire type")
                length, pos = _read_varint(buf, pos, end)
                if length > end - pos:
                    raise DecodeError(f"map {f.name}: entry runs past the end")
                if tag >> 3 == 1:
                    try:
                        key = buf[pos : pos + length].decode("utf-8")
                    except UnicodeDecodeError:
                        raise DecodeError(f"map {f.name}: invalid UTF-8 key") from None
                elif tag >> 3 == 2:
                    value = cls()
                    value._decode(buf, pos, pos + length)
                pos += length
            getattr(self, f.name)[key] = value if value is not None else cls()
        else:
            # Packed repeated scalars.
            if not f.repeated:
                raise DecodeError(f"field {f.name}: length-delimited data for a scalar")
            target = getattr(self, f.name)
            if kind == "float":
                if (end - pos) % 4:
                    raise DecodeError(f"field {f.name}: packed floats are not a multiple of 4 bytes")
                target.extend(struct.unpack_from(f"<{(end - pos) // 4}f", buf, pos))
            elif kind == "double":
                if (end - pos) % 8:
                    raise DecodeError(f"field {f.name}: packed doubles are not a multiple of 8 bytes")
                target.extend(struct.unpack_from(f"<{(end - pos) // 8}d", buf, pos))
            else:
                while pos < end:
                    v, pos = _read_varint(buf, pos, end)
                    target.append(_scalar_of_varint(f, v))


def _scalar_of_varint(f: Field, v: int) -> Any:
    kind = f.kind
    if kind == "bool":
        return v != 0
    if kind == "int32":
        return _signed(v, 32)
    if kind == "int64":
        return _signed(v, 64)
    if kind == "uint32":
        return v & 0xFFFFFFFF
    if kind == "uint64":
        return v & ((1 << 64) - 1)
    raise DecodeError(f"field {f.name}: varint for a {kind} field")


def _present(f: Field, v: Any) -> bool:
    if f.repeated or f.kind == "map":
        return len(v) > 0
    return True


def _as_message(cls: Type[Message], v: Any) -> Message:
    if isinstance(v, cls):
        return v
    if isinstance(v, dict):
        return cls(**v)
    raise TypeError(f"expected {cls.__name__} or a dict of its fields, got {type(v).__name__}")
