"""The Open Inference Protocol datatypes: one row per type, as ``src/protocol/datatypes.ts`` has them.

Each row says how big an element is, how ``struct`` packs it (little-endian, as every wire form of
OIP is), which ``InferTensorContents`` field carries it over gRPC (``None``: raw bytes only, as FP16
and BF16 travel) and what kind of Python value an element is.

FP16 converts with ``struct``'s ``e`` format (one rounding step from the double, ties to even);
BF16 has no ``struct`` format, so it is converted here with the same rounding.

Example::

    info = DATATYPES["FP32"]
    info.size, info.contents    # (4, "fp32_contents")
    pack_values("BF16", [1.5])  # b'\\xc0?'
"""
from __future__ import annotations

import math
import struct
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from .errors import AnyServeError


class DatatypeInfo(NamedTuple):
    name: str
    #: ``bool``, ``int``, ``uint``, ``float``, ``half`` (FP16/BF16) or ``bytes``.
    kind: str
    #: Bytes per element; 0 for BYTES (variable length).
    size: int
    #: ``struct`` format character (little-endian), or "" where struct has none (BF16, BYTES).
    fmt: str
    #: The ``InferTensorContents`` field carrying it, or None when it travels raw only.
    contents: Optional[str]
    #: Integer range a JSON element may take (64-bit types: what JSON carries exactly).
    min: Optional[int] = None
    max: Optional[int] = None


_SAFE = 2**53 - 1

DATATYPES: Dict[str, DatatypeInfo] = {
    "BOOL": DatatypeInfo("BOOL", "bool", 1, "?", "bool_contents"),
    "UINT8": DatatypeInfo("UINT8", "uint", 1, "B", "uint_contents", 0, 0xFF),
    "UINT16": DatatypeInfo("UINT16", "uint", 2, "H", "uint_contents", 0, 0xFFFF),
    "UINT32": DatatypeInfo("UINT32", "uint", 4, "I", "uint_contents", 0, 0xFFFFFFFF),
    "UINT64": DatatypeInfo("UINT64", "uint", 8, "Q", "uint64_contents", 0, 2**64 - 1),
    "INT8": DatatypeInfo("INT8", "int", 1, "b", "int_contents", -0x80, 0x7F),
    "INT16": DatatypeInfo("INT16", "int", 2, "h", "int_contents", -0x8000, 0x7FFF),
    "INT32": DatatypeInfo("INT32", "int", 4, "i", "int_contents", -(2**31), 2**31 - 1),
    "INT64": DatatypeInfo("INT64", "int", 8, "q", "int64_contents", -(2**63), 2**63 - 1),
    "FP16": DatatypeInfo("FP16", "half", 2, "e", None),
    "FP32": DatatypeInfo("FP32", "float", 4, "f", "fp32_contents"),
    "FP64": DatatypeInfo("FP64", "float", 8, "d", "fp64_contents"),
    "BYTES": DatatypeInfo("BYTES", "bytes", 0, "", "bytes_contents"),
    "BF16": DatatypeInfo("BF16", "half", 2, "", None),
}

DATATYPES_LIST = ", ".join(DATATYPES)

#: The ``InferTensorContents`` fields, in the .proto's order.
CONTENTS_FIELDS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)


def invalid_tensor(message: str) -> AnyServeError:
    return AnyServeError("INVALID_TENSOR", message)


def info_of(datatype: Any, label: str) -> DatatypeInfo:
    info = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if info is None:
        raise invalid_tensor(f"{label}: unknown datatype {describe(datatype)}, expected one of {DATATYPES_LIST}")
    return info


def describe(v: Any) -> str:
    """A short rendering of a value for error messages (never a megabyte of it)."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_shape(shape: Any, label: str) -> List[int]:
    if not isinstance(shape, (list, tuple)):
        raise invalid_tensor(f"{label}: shape must be an array of integers, got {describe(shape)}")
    out = []
    for i, d in enumerate(shape):
        if isinstance(d, bool) or not isinstance(d, int) or d < 0 or d > _SAFE:
            if isinstance(d, float) and d.is_integer() and 0 <= d <= _SAFE:
                d = int(d)
            else:
                raise invalid_tensor(f"{label}: shape[{i}] must be a non-negative integer below 2^53, got {describe(d)}")
        out.append(d)
    return out


def element_count(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def count_mismatch(label: str, datatype: str, shape: Sequence[int], got: int) -> AnyServeError:
    return invalid_tensor(
        f"{label}: expected {element_count(shape)} {datatype} elements for shape [{','.join(map(str, shape))}], got {got}"
    )


# ── 16-bit floats ────────────────────────────────────────────────────────────────────────────────


def _round_even(v: float) -> int:
    f = math.floor(v)
    d = v - f
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    return f if f % 2 == 0 else f + 1


def bfloat16_bits(x: float) -> int:
    """bfloat16 bits of ``x``, rounded to nearest, ties to even, straight from the double."""
    exp_bits, man_bits = 8, 7
    exp_max = (1 << exp_bits) - 1
    bias = (1 << (exp_bits - 1)) - 1
    sign = (1 << (exp_bits + man_bits)) if (x < 0 or (x == 0 and math.copysign(1.0, x) < 0)) else 0
    if math.isnan(x):
        return (exp_max << man_bits) | (1 << (man_bits - 1))
    a = abs(x)
    if math.isinf(a):
        return sign | (exp_max << man_bits)
    min_normal_exp = 1 - bias
    if a < 2.0**min_normal_exp:
        return sign | _round_even(a * 2.0 ** (man_bits - min_normal_exp))
    m_frac, e = math.frexp(a)  # a = m_frac * 2**e, 0.5 <= m_frac < 1
    e -= 1
    m = _round_even((a / 2.0**e - 1) * 2**man_bits)
    if m == 1 << man_bits:
        m = 0
        e += 1
    biased = e + bias
    if biased >= exp_max:
        return sign | (exp_max << man_bits)
    return sign | (biased << man_bits) | m


def bfloat16_value(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", (bits & 0xFFFF) << 16))[0]


# ── values ↔ little-endian bytes ────────────────────────────────────────────────────────────────


def pack_values(datatype: str, values: Sequence[Any], label: str = "tensor") -> bytes:
    """Fixed-size elements as little-endian bytes, each checked against its type's range."""
    info = info_of(datatype, label)
    if info.kind == "bytes":
        raise invalid_tensor(f"{label}: BYTES elements are not fixed-size")
    checked = [check_element(info, v, label, i) for i, v in enumerate(values)]
    if datatype == "BF16":
        return struct.pack(f"<{len(checked)}H", *(bfloat16_bits(v) for v in checked))
    try:
        return struct.pack(f"<{len(checked)}{info.fmt}", *checked)
    except (struct.error, OverflowError) as err:
        raise invalid_tensor(f"{label}: {datatype} values cannot be packed: {err}") from None


def unpack_values(datatype: str, raw: bytes) -> List[Any]:
    """Little-endian bytes → Python values (FP16/BF16 as floats, BOOL as bools)."""
    info = DATATYPES[datatype]
    n = len(raw) // info.size if info.size else 0
    if datatype == "BF16":
        return [bfloat16_value(b) for b in struct.unpack(f"<{n}H", raw)]
    return list(struct.unpack(f"<{n}{info.fmt}", raw))


def check_element(info: DatatypeInfo, v: Any, label: str, i: int) -> Any:
    kind = info.kind
    if kind == "bool":
        if v is True or v is False or v == 1 or v == 0:
            return bool(v)
        raise invalid_tensor(f"{label}: element {i} must be a BOOL (true/false or 0/1), got {describe(v)}")
    if kind in ("int", "uint"):
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            elif type(v).__module__ == "numpy" and hasattr(v, "item"):
                v = v.item()
            else:
                raise invalid_tensor(f"{label}: element {i} must be an {info.name} integer, got {describe(v)}")
        if v < info.min or v > info.max:  # type: ignore[operator]
            raise invalid_tensor(f"{label}: element {i} must be an {info.name} integer in [{info.min}, {info.max}], got {v}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if type(v).__module__ == "numpy" and hasattr(v, "item"):
            return float(v.item())
        raise invalid_tensor(f"{label}: element {i} must be an {info.name} number, got {describe(v)}")
    return float(v)
