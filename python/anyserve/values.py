"""Plain Python values ↔ tensors, requests and responses, with the TypeScript SDK's rules
(``src/protocol/value-convert.ts``, ``value-messages.ts``), so a value crosses between Python and
TypeScript handlers unchanged:

========================================  ==================================================================
value                                     tensor
========================================  ==================================================================
``str`` / nested list of ``str``          BYTES, UTF-8
``bytes`` / list of ``bytes``             BYTES, ``content_type: application/octet-stream``
``int`` / ``float`` (and nested lists)    FP64 (JavaScript numbers); an ``int`` beyond 2^53 → INT64/UINT64
``bool`` / list of ``bool``               BOOL
numpy array or scalar                     its own dtype and shape
an ``ObjRef``                             BYTES [1] holding its string form
anything else (dict, None, mixed lists)   BYTES [1] of JSON text, ``content_type: application/json``
========================================  ==================================================================

A handler's return value becomes a response: a :class:`ModelInferResponse` passes as is; a dict
with ``outputs`` holding tensor objects is a whole response; a dict whose values all convert to
tensors gives one output per key; anything else is one output named ``output``.

The way back (:func:`response_to_value`, what ``context.call`` returns): a single output named
``output`` gives its value, otherwise a dict by name; an output of shape ``[1]`` gives its element;
BYTES marked JSON is parsed, marked octet-stream gives ``bytes``, other BYTES give ``str``.

Example::

    value_to_tensor("x", [[1, 2], [3, 4]])   # FP64 [2, 2]
    result_to_response({"label": "cat", "score": 0.9}, "m").outputs.names()   # ['label', 'score']
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._proto import grpc_predict_v2_pb2 as pb
from .datatypes import DATATYPES, info_of, invalid_tensor, pack_values
from .errors import AnyServeError
from .objects import ObjRef  # the value rules know refs; objects imports nothing from here
from .messages import (
    NUMPY_DTYPES,
    InferInputTensor,
    InferOutputTensor,
    ModelInferRequest,
    ModelInferResponse,
    Tensor,
)

JSON_CONTENT_TYPE = "application/json"
BLOB_CONTENT_TYPE = "application/octet-stream"
_SAFE = 2**53 - 1
_NUMPY_TO_DATATYPE = {v: k for k, v in NUMPY_DTYPES.items()}


def _is_numpy(v: Any) -> bool:
    return type(v).__module__ == "numpy" and hasattr(v, "dtype")


def _rectangular(value: Sequence[Any]) -> Optional[Tuple[List[int], List[Any]]]:
    """Shape and row-major leaves of a rectangular nested list, or None when it is ragged."""
    shape: List[int] = []
    cur: Any = value
    while isinstance(cur, (list, tuple)):
        shape.append(len(cur))
        if not cur:
            break
        cur = cur[0]
    level: List[Any] = list(value)
    for depth in range(1, len(shape)):
        width = shape[depth]
        nxt: List[Any] = []
        for item in level:
            if not isinstance(item, (list, tuple)) or len(item) != width:
                return None
            nxt.extend(item)
        level = nxt
    for item in level:
        if isinstance(item, (list, tuple)):
            return None
    return shape, level


def _bytes_tensor(cls: Any, name: str, items: List[bytes], shape: List[int], content_type: Optional[str] = None) -> Tensor:
    return cls(name, "BYTES", shape, parameters={"content_type": content_type} if content_type else None, data=items)


def _numbers_tensor(cls: Any, name: str, leaves: List[Any], shape: List[int]) -> Tensor:
    ints = [v for v in leaves if isinstance(v, int)]
    if ints and any(v > _SAFE or v < -_SAFE for v in ints) and len(ints) == len(leaves):
        # Beyond what a double holds exactly: keep the integers (JavaScript gets bigints).
        dt = "UINT64" if any(v > 2**63 - 1 for v in ints) else "INT64"
        return cls(name, dt, shape, raw=pack_values(dt, leaves, f"value '{name}'"))
    return cls(name, "FP64", shape, raw=pack_values("FP64", leaves, f"value '{name}'"))


def try_tensor(name: str, value: Any, cls: Any = InferOutputTensor) -> Optional[Tensor]:
    """The tensor a value converts to without JSON, or None (dicts, None, mixed or ragged lists)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, str):
        return cls(name, "BYTES", [1], data=[value.encode("utf-8")])
    if isinstance(value, ObjRef):
        return cls(name, "BYTES", [1], data=[value.to_string().encode("utf-8")])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes_tensor(cls, name, [bytes(value)], [1], BLOB_CONTENT_TYPE)
    if isinstance(value, bool):
        return cls(name, "BOOL", [1], raw=b"\x01" if value else b"\x00")
    if isinstance(value, (int, float)):
        return _numbers_tensor(cls, name, [value], [1])
    if _is_numpy(value):
        return _numpy_tensor(cls, name, value)
    if not isinstance(value, (list, tuple)):
        return None
    rect = _rectangular(value)
    if rect is None:
        return None
    shape, leaves = rect
    if not leaves:
        return cls(name, "FP64", shape, raw=b"")
    kinds = {_leaf_kind(v) for v in leaves}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind == "number":
        return _numbers_tensor(cls, name, leaves, shape)
    if kind == "bool":
        return cls(name, "BOOL", shape, raw=bytes(1 if v else 0 for v in leaves))
    if kind == "str":
        return cls(name, "BYTES", shape, data=[v.encode("utf-8") for v in leaves])
    if kind == "bytes":
        return _bytes_tensor(cls, name, [bytes(v) for v in leaves], shape, BLOB_CONTENT_TYPE)
    return None


def _leaf_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "bytes"
    return "other"


def _numpy_tensor(cls: Any, name: str, arr: Any) -> Optional[Tensor]:
    import numpy as np

    a = np.asarray(arr)
    shape = list(a.shape) if a.ndim > 0 else [1]
    if a.dtype.kind in ("U", "S", "O"):
        flat = a.reshape(-1).tolist()
        if all(isinstance(v, str) for v in flat):
            return cls(name, "BYTES", shape, data=[v.encode("utf-8") for v in flat])
        if all(isinstance(v, bytes) for v in flat):
            return _bytes_tensor(cls, name, flat, shape, BLOB_CONTENT_TYPE)
        return None
    dt = _NUMPY_TO_DATATYPE.get(a.dtype.name)
    if dt is None:
        return None
    return cls(name, dt, shape, raw=np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())


def json_tensor(name: str, value: Any, cls: Any = InferOutputTensor) -> Tensor:
    """Any JSON value as a BYTES [1] tensor of JSON text, marked ``content_type: application/json``."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise invalid_tensor(f"value '{name}' cannot be converted to a tensor or to JSON: {err}") from None
    return _bytes_tensor(cls, name, [text.encode("utf-8")], [1], JSON_CONTENT_TYPE)


def _json_default(v: Any) -> Any:
    if isinstance(v, ObjRef):
        return v.to_string()
    if _is_numpy(v):
        return v.tolist()
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            pass
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def value_to_tensor(name: str, value: Any, datatype: Optional[str] = None, cls: Any = InferOutputTensor) -> Tensor:
    """A value as a tensor: the datatype inferred (table above), or converted to ``datatype``."""
    if not isinstance(name, str) or not name:
        raise AnyServeError("INVALID_TENSOR", "tensor name must be a non-empty string")
    if datatype is not None:
        info = info_of(datatype, f"value '{name}'")
        if isinstance(value, (bytes, bytearray)) and datatype != "BYTES":
            # Raw little-endian bytes of that type (e.g. FP16 bits).
            if len(value) % info.size:
                raise invalid_tensor(f"value '{name}': {len(value)} bytes is not a whole number of {info.size}-byte {datatype} elements")
            return cls(name, datatype, [len(value) // info.size], raw=bytes(value))
        if _is_numpy(value):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            value = [value]
            shape: List[int] = [1]
            leaves: List[Any] = value
        else:
            rect = _rectangular(value)
            if rect is None:
                raise invalid_tensor(f"value '{name}': nested list is ragged and cannot be a {datatype} tensor")
            shape, leaves = rect
        if datatype == "BYTES":
            return cls(name, "BYTES", shape, data=[v if isinstance(v, bytes) else str(v).encode("utf-8") for v in leaves])
        return cls(name, datatype, shape, raw=pack_values(datatype, leaves, f"value '{name}'"))
    t = try_tensor(name, value, cls)
    return t if t is not None else json_tensor(name, value, cls)


def _is_tensor_dict(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("datatype"), str) and isinstance(v.get("shape"), (list, tuple))


def tensor_from_dict(d: Dict[str, Any], cls: Any = InferOutputTensor) -> Tensor:
    """``{name, datatype, shape, data | contents, parameters?}`` (OIP JSON or the seed's form) as a tensor."""
    from .codec import tensor_from_json

    return tensor_from_json(d, "output" if cls is InferOutputTensor else "input", 0, None, cls)


def result_to_response(result: Any, model_name: str, request_id: Optional[str] = None) -> ModelInferResponse:
    """What a handler returned, as a response (rules in the module doc)."""
    if isinstance(result, dict) and "outputs" not in result:
        # The commonest return, first: a dict of plain values.
        return _dict_response(result, model_name, request_id)
    if isinstance(result, pb.ModelStreamInferResponse):
        if result.error_message:
            raise AnyServeError("WORKER_ERROR", result.error_message)
        result = result.infer_response
    if isinstance(result, pb.ModelInferResponse):
        from .codec import response_from_proto

        result = response_from_proto(result)
    if isinstance(result, ModelInferResponse):
        if result.error:
            raise AnyServeError("WORKER_ERROR", str(result.error))
        if not result.model_name:
            result.model_name = model_name
        if request_id is not None:
            result.id = request_id
        for i, t in enumerate(result.outputs):
            t._role = "output"
            t.check(i)
        return result
    if isinstance(result, dict) and isinstance(result.get("outputs"), list) and all(
        _is_tensor_dict(o) or isinstance(o, Tensor) for o in result["outputs"]
    ):
        res = ModelInferResponse(
            model_name=str(result.get("model_name") or model_name),
            model_version=str(result.get("model_version") or ""),
            id=request_id if request_id is not None else str(result.get("id") or ""),
            parameters=result.get("parameters") or {},
        )
        for o in result["outputs"]:
            res.outputs.append(o if isinstance(o, Tensor) else tensor_from_dict(o))
        return res
    if isinstance(result, dict):
        return _dict_response(result, model_name, request_id)
    return ModelInferResponse(model_name=model_name, id=request_id or "", outputs=[value_to_tensor("output", result)])


def _dict_response(result: Dict[str, Any], model_name: str, request_id: Optional[str]) -> ModelInferResponse:
    """One output per key when every value is a tensor, else the whole dict as one JSON output."""
    outputs: List[Tensor] = []
    for k, v in result.items():
        t = try_tensor(k, v) if isinstance(k, str) and k else None
        if t is None:
            outputs = [json_tensor("output", result)] if result else [value_to_tensor("output", result)]
            break
        outputs.append(t)
    if not result:
        outputs = [value_to_tensor("output", result)]
    return ModelInferResponse(model_name=model_name, id=request_id or "", outputs=outputs)


def tensor_to_value(t: Tensor) -> Any:
    """An output's value: JSON parsed, blobs as bytes, text as str, numbers as lists; ``[1]`` unwrapped."""
    scalar = len(t.shape) == 0 or (len(t.shape) == 1 and t.shape[0] == 1)
    ct = t.parameters.get("content_type")
    if t.datatype == "BYTES":
        items = t.data
        if ct == JSON_CONTENT_TYPE:
            try:
                values: List[Any] = [json.loads(b.decode("utf-8")) for b in items]
            except ValueError as err:
                raise AnyServeError("INVALID_TENSOR", f"output '{t.name}' says content_type application/json but is not JSON: {err}") from None
        elif ct == BLOB_CONTENT_TYPE:
            values = items
        else:
            values = [_text(b) for b in items]
    else:
        values = t.data
    return values[0] if scalar and len(values) == 1 else values


def _text(b: bytes) -> Any:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def response_to_value(res: ModelInferResponse) -> Any:
    if len(res.outputs) == 1 and res.outputs[0].name == "output":
        return tensor_to_value(res.outputs[0])
    return {t.name: tensor_to_value(t) for t in res.outputs}


def inputs_to_request(inputs: Any, datatypes: Optional[Dict[str, str]] = None) -> ModelInferRequest:
    """Client values as a request: tensors as they are, a dict of name → value, or one value named ``input``."""
    req = ModelInferRequest()
    dts = datatypes or {}
    if isinstance(inputs, ModelInferRequest):
        return inputs
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, Tensor) or _is_tensor_dict(t) for t in inputs):
        for t in inputs:
            req.inputs.append(_as_input(t if isinstance(t, Tensor) else tensor_from_dict(t, InferInputTensor)))
    elif isinstance(inputs, dict) and inputs:
        for k, v in inputs.items():
            req.inputs.append(_as_input(value_to_tensor(k, v, dts.get(k), InferInputTensor)))
    else:
        req.inputs.append(_as_input(value_to_tensor("input", inputs, dts.get("input"), InferInputTensor)))
    return req


def _as_input(t: Tensor) -> Tensor:
    t._role = "input"
    return t


__all__ = [
    "JSON_CONTENT_TYPE",
    "BLOB_CONTENT_TYPE",
    "DATATYPES",
    "value_to_tensor",
    "try_tensor",
    "json_tensor",
    "result_to_response",
    "response_to_value",
    "tensor_to_value",
    "inputs_to_request",
]
