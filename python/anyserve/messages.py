"""The seed's message classes: requests, responses and tensors as a Python handler sees them.

A tensor keeps what it arrived as — JSON ``data``, raw little-endian bytes (binary tensor extension,
gRPC ``raw_*_contents``) or typed ``contents`` — and converts on first access, so a handler that
never reads an input pays nothing for it. Every view is available whatever the source:

- ``tensor.contents.fp32_contents`` and the shortcuts ``tensor.fp32_contents``, ``int_contents``,
  ``bytes_contents``, … (the gRPC ``InferTensorContents`` field of its datatype; BYTES items are
  ``bytes``);
- ``tensor.data``: the flat list of element values (floats for FP16/BF16, which have no contents
  field);
- ``tensor.raw``: the row-major little-endian bytes (BYTES: 4-byte length + bytes per element);
- ``tensor.as_numpy()`` when numpy is importable.

Example::

    @app.capability(type="classify")
    def classify(request, context):
        image = request.inputs["image"].bytes_contents[0]      # by name, as the seed's design shows
        response = ModelInferResponse(model_name="classifier", id=request.id)
        response.add_output("label", "BYTES", [1], bytes_contents=[b"cat"])
        response.add_output("score", "FP32", [1], fp32_contents=[0.93])
        return response
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from .datatypes import (
    CONTENTS_FIELDS,
    DATATYPES,
    check_element,
    check_shape,
    count_mismatch,
    describe,
    element_count,
    info_of,
    invalid_tensor,
    pack_values,
    unpack_values,
)

ParamValue = Union[str, int, float, bool]


class InferTensorContents:
    """Typed element lists, one per ``InferTensorContents`` field of the OIP protobuf."""

    __slots__ = CONTENTS_FIELDS

    def __init__(self, **fields: Optional[Iterable[Any]]) -> None:
        for name in CONTENTS_FIELDS:
            setattr(self, name, list(fields.pop(name, None) or []))
        if fields:
            raise TypeError(f"InferTensorContents has no field {sorted(fields)[0]!r}")

    def filled(self) -> Optional[str]:
        """The first field holding elements, if any."""
        for name in CONTENTS_FIELDS:
            if getattr(self, name):
                return name
        return None

    def __repr__(self) -> str:
        name = self.filled()
        return f"InferTensorContents({name}={getattr(self, name)!r})" if name else "InferTensorContents()"


def _bytes_item(v: Any, label: str, i: int) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise invalid_tensor(f"{label}: BYTES element {i} must be bytes or a string, got {describe(v)}")


def serialize_bytes_elements(items: Sequence[bytes]) -> bytes:
    """BYTES elements in the binary layout: a 4-byte little-endian length, then the bytes, each."""
    parts = []
    for b in items:
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def parse_bytes_elements(raw: bytes, count: int, label: str) -> List[bytes]:
    """The inverse of :func:`serialize_bytes_elements`, checked against the expected count."""
    out: List[bytes] = []
    off = 0
    mv = memoryview(raw)
    n = len(raw)
    seen = 0
    while off < n:
        if n - off < 4:
            raise invalid_tensor(f"{label}: BYTES element {seen} has a truncated 4-byte length prefix ({n - off} bytes left)")
        (length,) = struct.unpack_from("<I", raw, off)
        off += 4
        if length > n - off:
            raise invalid_tensor(f"{label}: BYTES element {seen} declares {length} bytes but only {n - off} remain")
        if seen < count:
            out.append(bytes(mv[off : off + length]))
        seen += 1
        off += length
    if seen != count:
        raise invalid_tensor(f"{label}: expected {count} BYTES elements, got {seen}")
    return out


class Tensor:
    """An OIP tensor: ``name``, ``datatype``, ``shape``, ``parameters`` and its elements (see the module doc)."""

    __slots__ = ("name", "datatype", "shape", "parameters", "_contents", "_raw", "_data", "_role")

    def __init__(
        self,
        name: str,
        datatype: str,
        shape: Sequence[int],
        contents: Optional[InferTensorContents] = None,
        parameters: Optional[Dict[str, ParamValue]] = None,
        *,
        data: Optional[Sequence[Any]] = None,
        raw: Optional[bytes] = None,
    ) -> None:
        self.name = name
        self.datatype = datatype
        self.shape = list(shape)
        self.parameters: Dict[str, ParamValue] = dict(parameters or {})
        self._contents = contents
        self._data = list(data) if data is not None else None
        self._raw = raw
        self._role = "tensor"

    @property
    def label(self) -> str:
        return f"{self._role} '{self.name}'"

    # ── views ──

    @property
    def contents(self) -> InferTensorContents:
        """The typed contents (built from ``data`` or ``raw`` on first access)."""
        if self._contents is None:
            info = info_of(self.datatype, self.label)
            c = InferTensorContents()
            if info.contents is not None and (self._data is not None or self._raw is not None):
                setattr(c, info.contents, self.data)
            self._contents = c
        return self._contents

    @contents.setter
    def contents(self, value: InferTensorContents) -> None:
        self._contents, self._data, self._raw = value, None, None

    @property
    def data(self) -> List[Any]:
        """The flat element values: bytes for BYTES, bools, ints, floats (FP16/BF16 too)."""
        info = info_of(self.datatype, self.label)
        if self._data is not None:
            if info.kind == "bytes":
                return [_bytes_item(v, self.label, i) for i, v in enumerate(self._data)]
            return [check_element(info, v, self.label, i) for i, v in enumerate(self._data)]
        if self._raw is not None:
            if info.kind == "bytes":
                return parse_bytes_elements(self._raw, element_count(self.shape), self.label)
            return unpack_values(self.datatype, self._raw)
        if self._contents is not None:
            name = self._contents.filled()
            if name is None:
                return []
            if info.contents is not None and name != info.contents:
                raise invalid_tensor(f"{self.label}: {self.datatype} data must be in {info.contents}, got {name}")
            if info.contents is None:
                raise invalid_tensor(f"{self.label}: {self.datatype} has no contents field; give its data as raw bytes")
            return list(getattr(self._contents, name))
        return []

    @property
    def raw(self) -> bytes:
        """Row-major little-endian bytes (BYTES: length-prefixed elements), as the binary forms carry them."""
        if self._raw is not None:
            return self._raw
        values = self.data
        if self.datatype == "BYTES":
            return serialize_bytes_elements([_bytes_item(v, self.label, i) for i, v in enumerate(values)])
        return pack_values(self.datatype, values, self.label)

    def as_numpy(self) -> Any:
        """The elements as a numpy array of the tensor's shape (needs numpy; BYTES gives an object array)."""
        import numpy as np  # only here: numpy is never required

        if self.datatype == "BYTES":
            return np.array(self.data, dtype=object).reshape(self.shape)
        if self.datatype == "BF16":
            return np.array(self.data, dtype=np.float32).reshape(self.shape)
        return np.frombuffer(self.raw, dtype=np.dtype(NUMPY_DTYPES[self.datatype]).newbyteorder("<")).reshape(self.shape)

    def check(self, index: int = 0) -> "Tensor":
        """Validates name, datatype, shape and element count; returns self."""
        if not isinstance(self.name, str) or not self.name:
            raise invalid_tensor(f"{self._role} #{index}: name must be a non-empty string")
        info = info_of(self.datatype, self.label)
        self.shape = check_shape(self.shape, self.label)
        count = element_count(self.shape)
        if self._raw is not None:
            if info.kind == "bytes":
                parse_bytes_elements(self._raw, count, self.label)
            elif len(self._raw) != count * info.size:
                raise invalid_tensor(
                    f"{self.label}: expected {count * info.size} bytes of {self.datatype} data for shape "
                    f"[{','.join(map(str, self.shape))}], got {len(self._raw)}"
                )
        else:
            got = len(self._data) if self._data is not None else len(self.data)
            if got != count:
                raise count_mismatch(self.label, self.datatype, self.shape, got)
        return self

    # ── the seed's shortcuts ──

    @property
    def bool_contents(self) -> List[bool]:
        return self.contents.bool_contents

    @property
    def int_contents(self) -> List[int]:
        return self.contents.int_contents

    @property
    def int64_contents(self) -> List[int]:
        return self.contents.int64_contents

    @property
    def uint_contents(self) -> List[int]:
        return self.contents.uint_contents

    @property
    def uint64_contents(self) -> List[int]:
        return self.contents.uint64_contents

    @property
    def fp32_contents(self) -> List[float]:
        return self.contents.fp32_contents

    @property
    def fp64_contents(self) -> List[float]:
        return self.contents.fp64_contents

    @property
    def bytes_contents(self) -> List[bytes]:
        return self.contents.bytes_contents

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, datatype={self.datatype!r}, shape={self.shape!r})"


class InferInputTensor(Tensor):
    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._role = "input"


class InferOutputTensor(Tensor):
    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._role = "output"


#: numpy dtype names by datatype (BF16 has none: it is read as float32).
NUMPY_DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}


class TensorList(list):
    """A list of tensors that also answers by name: ``request.inputs["image"]``."""

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            for t in self:
                if t.name == key:
                    return t
            raise KeyError(f"no tensor named {key!r}; have {[t.name for t in self]}")
        return list.__getitem__(self, key)

    def get(self, name: str, default: Any = None) -> Any:
        for t in self:
            if t.name == name:
                return t
        return default

    def names(self) -> List[str]:
        return [t.name for t in self]


def _contents_kwargs(datatype: str, kw: Dict[str, Any]) -> InferTensorContents:
    fields = {k: v for k, v in kw.items() if v is not None}
    unknown = [k for k in fields if k not in CONTENTS_FIELDS]
    if unknown:
        raise TypeError(f"unexpected keyword {unknown[0]!r}")
    if datatype == "BYTES" and "bytes_contents" in fields:
        fields["bytes_contents"] = [_bytes_item(v, "tensor", i) for i, v in enumerate(fields["bytes_contents"])]
    return InferTensorContents(**fields)


def _make_tensor(cls: Any, name: str, datatype: str, shape: Sequence[int], parameters: Any, data: Any, raw: Any, kw: Dict[str, Any]) -> Tensor:
    if data is not None:
        return cls(name, datatype, shape, parameters=parameters, data=data)
    if raw is not None:
        return cls(name, datatype, shape, parameters=parameters, raw=bytes(raw))
    return cls(name, datatype, shape, _contents_kwargs(datatype, kw), parameters)


class RequestedOutput:
    """An output a request asks for by name (OIP ``outputs``), with its parameters."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: Optional[Dict[str, ParamValue]] = None) -> None:
        self.name = name
        self.parameters = dict(parameters or {})

    def __repr__(self) -> str:
        return f"RequestedOutput({self.name!r})"


class ModelInferRequest:
    """An inference request: ``model_name``, ``model_version``, ``id``, ``parameters``, ``inputs``, ``outputs``."""

    def __init__(
        self,
        model_name: str = "",
        id: str = "",
        model_version: str = "",
        parameters: Optional[Dict[str, ParamValue]] = None,
        inputs: Optional[Iterable[Tensor]] = None,
        outputs: Optional[Iterable[Any]] = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.id = id
        self.parameters: Dict[str, ParamValue] = dict(parameters or {})
        self.inputs = TensorList(inputs or [])
        self.outputs: List[RequestedOutput] = [o if isinstance(o, RequestedOutput) else RequestedOutput(str(o)) for o in outputs or []]
        #: The capability query the call was routed with (set by the worker).
        self.capability: Dict[str, str] = {}
        #: ``contents`` when the request came in the seed's JSON form (and is answered in it).
        self.json_form = "data"

    @property
    def raw_input_contents(self) -> List[bytes]:
        """One raw buffer per input when the inputs came raw (binary extension, gRPC raw contents), else []."""
        if self.inputs and all(t._raw is not None for t in self.inputs):
            return [t._raw for t in self.inputs]  # type: ignore[misc]
        return []

    def add_input(
        self,
        name: str,
        datatype: str,
        shape: Sequence[int],
        int_contents: Optional[Iterable[int]] = None,
        bytes_contents: Optional[Iterable[Any]] = None,
        fp32_contents: Optional[Iterable[float]] = None,
        parameters: Optional[Dict[str, ParamValue]] = None,
        *,
        data: Optional[Sequence[Any]] = None,
        raw: Optional[bytes] = None,
        **contents: Any,
    ) -> InferInputTensor:
        kw = dict(contents, int_contents=int_contents, bytes_contents=bytes_contents, fp32_contents=fp32_contents)
        t = _make_tensor(InferInputTensor, name, datatype, shape, parameters, data, raw, kw)
        self.inputs.append(t)
        return t  # type: ignore[return-value]

    def get_input(self, name: str) -> Optional[InferInputTensor]:
        return self.inputs.get(name)

    def __repr__(self) -> str:
        return f"ModelInferRequest(model_name={self.model_name!r}, id={self.id!r}, inputs={self.inputs.names()!r})"


class ModelInferResponse:
    """An inference response. A handler may return one; ``error`` set makes the call fail with it."""

    def __init__(
        self,
        model_name: str = "",
        id: str = "",
        model_version: str = "",
        parameters: Optional[Dict[str, ParamValue]] = None,
        outputs: Optional[Iterable[Tensor]] = None,
        error: Optional[str] = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.id = id
        self.parameters: Dict[str, ParamValue] = dict(parameters or {})
        self.outputs = TensorList(outputs or [])
        self.error = error

    def add_output(
        self,
        name: str,
        datatype: str,
        shape: Sequence[int],
        int_contents: Optional[Iterable[int]] = None,
        bytes_contents: Optional[Iterable[Any]] = None,
        fp32_contents: Optional[Iterable[float]] = None,
        parameters: Optional[Dict[str, ParamValue]] = None,
        *,
        data: Optional[Sequence[Any]] = None,
        raw: Optional[bytes] = None,
        **contents: Any,
    ) -> InferOutputTensor:
        kw = dict(contents, int_contents=int_contents, bytes_contents=bytes_contents, fp32_contents=fp32_contents)
        t = _make_tensor(InferOutputTensor, name, datatype, shape, parameters, data, raw, kw)
        self.outputs.append(t)
        return t  # type: ignore[return-value]

    def get_output(self, name: str) -> Optional[InferOutputTensor]:
        return self.outputs.get(name)

    def __repr__(self) -> str:
        return f"ModelInferResponse(model_name={self.model_name!r}, id={self.id!r}, outputs={self.outputs.names()!r})"


__all__ = [
    "DATATYPES",
    "InferTensorContents",
    "Tensor",
    "InferInputTensor",
    "InferOutputTensor",
    "TensorList",
    "RequestedOutput",
    "ModelInferRequest",
    "ModelInferResponse",
    "serialize_bytes_elements",
    "parse_bytes_elements",
]
