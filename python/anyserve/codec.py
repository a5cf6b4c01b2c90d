"""The wire formats of inference bodies, as the replica hands them to a Python worker and takes
them back (``src/protocol/codec.ts``, ``json-codec.ts``, ``binary-ext.ts``, ``proto-codec.ts``):

- ``application/json``: OIP v2 JSON (``{"inputs": [{"name", "datatype", "shape", "data"}]}``);
  the seed's ``contents`` form (``"contents": {"bytes_contents": [...]}``) is read too;
- ``application/octet-stream``: JSON with Triton's binary tensor extension — the first ``hl``
  bytes are JSON, tensors with ``parameters.binary_data_size`` take their bytes from the rest;
- ``application/x-protobuf``: a serialized ``inference.ModelInferRequest`` / ``ModelInferResponse``.

Errors carry the codes of the TypeScript codecs: ``INVALID_JSON``, ``INVALID_PROTOBUF``,
``INVALID_REQUEST``, ``INVALID_PARAMETER``, ``INVALID_TENSOR``, ``UNSUPPORTED_MEDIA_TYPE``.

Example::

    req = decode_request(body, "application/json", None)
    body, ct, hl = encode_response(response, "json", req)
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional, Tuple

from .datatypes import DATATYPES, CONTENTS_FIELDS, check_shape, count_mismatch, describe, element_count, info_of, invalid_tensor
from .errors import AnyServeError
from .messages import (
    InferInputTensor,
    InferOutputTensor,
    ModelInferRequest,
    ModelInferResponse,
    RequestedOutput,
    Tensor,
    parse_bytes_elements,
)

JSON = "application/json"
BINARY = "application/octet-stream"
PROTOBUF = "application/x-protobuf"
MAX_ID_LENGTH = 256
_SAFE = 2**53 - 1
_PROTO_TYPES = ("application/x-protobuf", "application/protobuf", "application/grpc+proto")
_FORBIDDEN = ("__proto__", "constructor", "prototype")

Encoded = Tuple[bytes, str, Optional[int]]

# Made once: json.loads/dumps build (and detect the encoding of) a new one per call.
_decode_json = json.JSONDecoder().decode
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def format_of(content_type: Optional[str]) -> str:
    """``json`` or ``protobuf`` for a body's Content-Type; anything else is 415."""
    if not content_type:
        return "json"
    base = content_type.split(";", 1)[0].strip().lower()
    if base in (JSON, BINARY):
        return "json"
    if base in _PROTO_TYPES:
        return "protobuf"
    raise AnyServeError("UNSUPPORTED_MEDIA_TYPE", f"Content-Type {content_type!r} is not supported: use application/json, application/octet-stream or application/x-protobuf")


# ── JSON ─────────────────────────────────────────────────────────────────────────────────────────


def _parse_json(raw: bytes, what: str) -> Dict[str, Any]:
    if not raw:
        raise AnyServeError("INVALID_JSON", f"{what} body is empty")
    try:
        obj = _decode_json(raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise AnyServeError("INVALID_JSON", f"{what} body is not valid JSON: {err}") from None
    if not isinstance(obj, dict):
        raise AnyServeError("INVALID_JSON", f"{what} body must be a JSON object, got {describe(obj)}")
    _no_prototype_keys(obj, what)
    return obj


def _no_prototype_keys(obj: Dict[str, Any], where: str) -> None:
    for k in _FORBIDDEN:
        if k in obj:
            raise AnyServeError("INVALID_JSON", f"{where}: key '{k}' is not allowed")


def read_parameters(value: Any, where: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AnyServeError("INVALID_PARAMETER", f"{where} parameters must be an object, got {describe(value)}")
    _no_prototype_keys(value, f"{where} parameters")
    for k, v in value.items():
        if not (isinstance(v, (str, bool)) or (isinstance(v, (int, float)) and math.isfinite(v))):
            raise AnyServeError("INVALID_PARAMETER", f"{where} parameter '{k}' must be a string, number or boolean, got {describe(v)}")
    return dict(value)


def _optional_string(obj: Dict[str, Any], key: str, where: str, max_length: Optional[int] = None) -> str:
    v = obj.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise AnyServeError("INVALID_REQUEST", f"{where} field '{key}' must be a string, got {describe(v)}")
    if max_length is not None and len(v) > max_length:
        raise AnyServeError("INVALID_REQUEST", f"{where} field '{key}' must be at most {max_length} characters, got {len(v)}")
    return v


def _flatten(data: Any, shape: List[int], datatype: str, label: str) -> List[Any]:
    """JSON data (flat or nested row-major) flattened level by level, at most rank levels deep."""
    if not isinstance(data, list):
        if element_count(shape) == 1 and data is not None and not isinstance(data, dict):
            return [data]
        raise invalid_tensor(f"{label}: data must be an array, got {describe(data)}")
    level = data
    depth = 1
    max_depth = max(len(shape), 1)
    while level and isinstance(level[0], list):
        if depth >= max_depth:
            raise invalid_tensor(f"{label}: data is nested deeper than the rank {len(shape)} of shape {shape}")
        width = len(level[0])
        nxt: List[Any] = []
        for item in level:
            if not isinstance(item, list):
                raise invalid_tensor(f"{label}: nested data is ragged: depth {depth} mixes arrays and {datatype} values")
            if len(item) != width:
                raise invalid_tensor(f"{label}: nested data is ragged: at depth {depth} expected rows of {width} items, got {len(item)}")
            nxt.extend(item)
        level = nxt
        depth += 1
    if len(level) != element_count(shape):
        raise count_mismatch(label, datatype, shape, len(level))
    return level


class _Cursor:
    """Consecutive slices of a body's binary part; every byte must be claimed exactly once."""

    def __init__(self, binary: memoryview) -> None:
        self.binary = binary
        self.offset = 0

    def take(self, size: int, label: str) -> bytes:
        left = len(self.binary) - self.offset
        if size > left:
            raise invalid_tensor(f"{label}: binary_data_size {size} is more than the {left} bytes left in the binary part of the body")
        out = bytes(self.binary[self.offset : self.offset + size])
        self.offset += size
        return out

    def finish(self) -> None:
        if self.offset != len(self.binary):
            raise invalid_tensor(
                f"the binary part of the body is {len(self.binary)} bytes but binary_data_size values add up to {self.offset}"
            )


#: The seed's contents form: the datatype a tensor that names none gets from its one contents field.
FIELD_DATATYPE = {
    "bool_contents": "BOOL",
    "int_contents": "INT32",
    "int64_contents": "INT64",
    "uint_contents": "UINT32",
    "uint64_contents": "UINT64",
    "fp32_contents": "FP32",
    "fp64_contents": "FP64",
    "bytes_contents": "BYTES",
}


def _filled(contents: Any, label: str) -> List[Tuple[str, List[Any]]]:
    if not isinstance(contents, dict):
        raise invalid_tensor(f"{label}: contents must be an object of {', '.join(FIELD_DATATYPE)}, got {describe(contents)}")
    _no_prototype_keys(contents, f"{label} contents")
    out = []
    for k, v in contents.items():
        if k not in FIELD_DATATYPE:
            raise invalid_tensor(f"{label}: unknown contents field '{str(k)[:64]}', expected one of {', '.join(FIELD_DATATYPE)}")
        if not isinstance(v, list):
            raise invalid_tensor(f"{label}: contents.{k} must be an array, got {describe(v)}")
        if v:
            out.append((k, v))
    return out


def tensor_from_json(obj: Any, role: str, index: int, cursor: Optional[_Cursor], cls: Any, forms: Optional[Dict[str, bool]] = None) -> Tensor:
    """One JSON tensor (``data``, the seed's ``contents``, or binary data) as a Tensor, validated.

    The seed's form (``contents``, no ``data``) may leave out ``datatype`` (it follows from the one
    contents field used) and ``shape`` (flat ``[n]``); ``forms["contents"]`` is set when it is used.
    """
    label = f"{role} #{index}"
    if not isinstance(obj, dict):
        raise invalid_tensor(f"{label} must be an object, got {describe(obj)}")
    _no_prototype_keys(obj, label)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise invalid_tensor(f"{label}: name must be a non-empty string, got {describe(name)}")
    label = f"{role} '{name}'"
    seed = obj.get("data") is None and obj.get("contents") is not None
    if seed:
        used = _filled(obj["contents"], label)
        if forms is not None:
            forms["contents"] = True
        if obj.get("datatype") is None or obj.get("shape") is None:
            obj = dict(obj)
            if obj.get("datatype") is None:
                if len(used) != 1:
                    raise invalid_tensor(f"{label}: has no datatype, and its contents fill {len(used)} fields (expected exactly one to infer it from)")
                obj["datatype"] = FIELD_DATATYPE[used[0][0]]
            if obj.get("shape") is None:
                obj["shape"] = [len(used[0][1]) if used else 0]
    datatype = obj.get("datatype")
    info = info_of(datatype, label)
    shape = check_shape(obj.get("shape"), label)
    params = read_parameters(obj.get("parameters"), label)
    size = params.pop("binary_data_size", None)
    data = obj.get("data")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise invalid_tensor(f"{label}: parameter binary_data_size must be a non-negative integer, got {describe(size)}")
        if data is not None:
            raise invalid_tensor(f"{label}: has both 'data' and parameter binary_data_size")
        if cursor is None:
            raise invalid_tensor(f"{label}: has binary_data_size but the body has no binary part (Inference-Header-Content-Length is missing)")
        t = cls(name, datatype, shape, parameters=params, raw=cursor.take(size, label))
        t._role = role
        return t.check(index)
    if seed:
        # The seed's form: {"contents": {"bytes_contents": [...]}} — the field of the datatype.
        filled = _filled(obj["contents"], label)
        for field, _ in filled:
            if field != info.contents:
                raise invalid_tensor(
                    f"{label}: {datatype} has no typed contents field and must be sent in raw contents, got {field}"
                    if info.contents is None
                    else f"{label}: {datatype} data must be in {info.contents}, got {field}"
                )
        data = filled[0][1] if filled else []
        if info.kind in ("int", "uint") and info.size == 8:
            # proto3's JSON mapping writes 64-bit integers as decimal strings.
            data = [int(v) if isinstance(v, str) and re.match(r"^-?\d{1,20}$", v) else v for v in data]
    if data is None:
        raise invalid_tensor(f"{label}: has no 'data' and no parameter binary_data_size")
    flat = _flatten(data, shape, datatype, label)
    if info.kind == "bytes":
        for i, v in enumerate(flat):
            if not isinstance(v, (str, bytes)):
                raise invalid_tensor(f"{label}: element {i} must be a string (BYTES), got {describe(v)}")
    elif role == "output" and info.kind in ("float", "half"):
        flat = [math.nan if v is None else v for v in flat]  # NaN travels as null in JSON
    t = cls(name, datatype, shape, parameters=params, data=flat)
    t._role = role
    return t


def _read_tensors(items: Any, role: str, cursor: Optional[_Cursor], cls: Any, forms: Optional[Dict[str, bool]] = None) -> List[Tensor]:
    field = role + "s"
    if not isinstance(items, list) or (role == "input" and not items):
        raise AnyServeError(
            "INVALID_REQUEST",
            f"request field '{field}' must be a {'non-empty ' if role == 'input' else ''}array of tensors, got {describe(items)}",
        )
    seen = set()
    out = []
    for i, item in enumerate(items):
        t = tensor_from_json(item, role, i, cursor, cls, forms)
        if t.name in seen:
            raise invalid_tensor(f"{role} '{t.name}' appears more than once in '{field}'")
        seen.add(t.name)
        out.append(t)
    if cursor is not None:
        cursor.finish()
    return out


def _split(body: bytes, hl: Optional[int]) -> Tuple[bytes, Optional[_Cursor]]:
    if hl is None:
        return body, None
    if not isinstance(hl, int) or hl < 0 or hl > len(body):
        raise AnyServeError("INVALID_HEADER", f"Inference-Header-Content-Length {hl} is not within the {len(body)}-byte body")
    mv = memoryview(body)
    return bytes(mv[:hl]), _Cursor(mv[hl:])


def decode_json_request(body: bytes, hl: Optional[int] = None) -> ModelInferRequest:
    raw, cursor = _split(body, hl)
    obj = _parse_json(raw, "request")
    req = ModelInferRequest(
        model_name=_optional_string(obj, "model_name", "request"),
        id=_optional_string(obj, "id", "request", MAX_ID_LENGTH),
        model_version=_optional_string(obj, "model_version", "request"),
        parameters=read_parameters(obj.get("parameters"), "request"),
    )
    forms = {"contents": False}
    for t in _read_tensors(obj.get("inputs"), "input", cursor, InferInputTensor, forms):
        req.inputs.append(t)
    if forms["contents"]:
        req.json_form = "contents"
    outs = obj.get("outputs")
    if outs is not None:
        if not isinstance(outs, list):
            raise AnyServeError("INVALID_REQUEST", f"request field 'outputs' must be an array, got {describe(outs)}")
        for i, o in enumerate(outs):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str) or not o["name"]:
                raise AnyServeError("INVALID_REQUEST", f"requested output #{i}: name must be a non-empty string")
            req.outputs.append(RequestedOutput(o["name"], read_parameters(o.get("parameters"), f"requested output '{o['name']}'")))
    return req


def decode_json_response(body: bytes, hl: Optional[int] = None) -> ModelInferResponse:
    raw, cursor = _split(body, hl)
    obj = _parse_json(raw, "response")
    res = ModelInferResponse(
        model_name=_optional_string(obj, "model_name", "response"),
        id=_optional_string(obj, "id", "response"),
        model_version=_optional_string(obj, "model_version", "response"),
        parameters=read_parameters(obj.get("parameters"), "response"),
    )
    for t in _read_tensors(obj.get("outputs"), "output", cursor, InferOutputTensor):
        res.outputs.append(t)
    return res


def _json_float(v: float) -> Any:
    if not math.isfinite(v):
        return None
    return int(v) if v.is_integer() and -_SAFE <= v <= _SAFE else v


def _json_data(t: Tensor) -> List[Any]:
    values = t.data
    if t.datatype == "BYTES":
        out = []
        for i, b in enumerate(values):
            try:
                out.append(b.decode("utf-8"))
            except UnicodeDecodeError:
                raise invalid_tensor(
                    f"output '{t.name}': BYTES element {i} is not valid UTF-8 and cannot be written as JSON; request binary data instead"
                ) from None
        return out
    kind = DATATYPES[t.datatype].kind
    if kind in ("float", "half"):
        # As JavaScript writes numbers: 2.0 as 2, NaN and infinities as null. Contents given as
        # Python ints (``fp32_contents=[6, 3]``) are floats' values too.
        return [_json_float(float(v)) for v in values]
    if kind in ("int", "uint") and DATATYPES[t.datatype].size == 8:
        for i, v in enumerate(values):
            if v > _SAFE or v < -_SAFE:
                raise invalid_tensor(
                    f"output '{t.name}': {t.datatype} element {i} is {v}, beyond the safe-integer range JSON can carry; request binary data instead"
                )
    return values


def _tensor_json(t: Tensor, binary: bool, parts: List[bytes]) -> Dict[str, Any]:
    out: Dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
    if binary:
        raw = t.raw
        parts.append(raw)
        out["parameters"] = dict(t.parameters, binary_data_size=len(raw))
    else:
        if t.parameters:
            out["parameters"] = t.parameters
        out["data"] = _json_data(t)
    return out


def _assemble(obj: Dict[str, Any], parts: List[bytes]) -> Encoded:
    head = _encode_json(obj).encode("utf-8")
    if not parts:
        return head, JSON, None
    return head + b"".join(parts), BINARY, len(head)


def _wants_binary(req: Optional[ModelInferRequest]) -> Tuple[bool, Dict[str, bool]]:
    if req is None:
        return False, {}
    per = {o.name: o.parameters["binary_data"] for o in req.outputs if isinstance(o.parameters.get("binary_data"), bool)}
    return req.parameters.get("binary_data_output") is True, per


def encode_contents_response(res: ModelInferResponse) -> Encoded:
    """The seed's JSON form: ``{model_name, model_version, id, outputs: [{name, datatype, shape, contents: {<field>: [...]}}]}``."""
    outputs = []
    for i, t in enumerate(res.outputs):
        t.check(i)
        field = DATATYPES[t.datatype].contents
        if field is None:
            raise invalid_tensor(f"output '{t.name}': {t.datatype} has no contents field; call with OIP 'data' tensors or gRPC to receive it")
        out: Dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if t.parameters:
            out["parameters"] = t.parameters
        out["contents"] = {field: _json_data(t)}
        outputs.append(out)
    obj: Dict[str, Any] = {"model_name": res.model_name, "model_version": res.model_version or "", "id": res.id or ""}
    if res.parameters:
        obj["parameters"] = res.parameters
    obj["outputs"] = outputs
    return _assemble(obj, [])


def encode_json_response(res: ModelInferResponse, req: Optional[ModelInferRequest] = None) -> Encoded:
    all_binary, per = _wants_binary(req)
    parts: List[bytes] = []
    outputs = [_tensor_json(t.check(i), per.get(t.name, all_binary), parts) for i, t in enumerate(res.outputs)]
    obj: Dict[str, Any] = {"model_name": res.model_name}
    if res.model_version:
        obj["model_version"] = res.model_version
    if res.id:
        obj["id"] = res.id
    if res.parameters:
        obj["parameters"] = res.parameters
    obj["outputs"] = outputs
    return _assemble(obj, parts)


def encode_json_request(req: ModelInferRequest, binary: bool = True) -> Encoded:
    """A request as JSON, every input in the binary part when ``binary`` (lossless; what ``context.call`` sends)."""
    parts: List[bytes] = []
    obj: Dict[str, Any] = {}
    if req.id:
        obj["id"] = req.id
    if req.model_name:
        obj["model_name"] = req.model_name
    params = dict(req.parameters)
    if binary:
        params.setdefault("binary_data_output", True)
    if params:
        obj["parameters"] = params
    obj["inputs"] = [_tensor_json(t.check(i), binary, parts) for i, t in enumerate(req.inputs)]
    if req.outputs:
        obj["outputs"] = [{"name": o.name, **({"parameters": o.parameters} if o.parameters else {})} for o in req.outputs]
    return _assemble(obj, parts)


# ── protobuf ─────────────────────────────────────────────────────────────────────────────────────


def _from_proto_params(m: Any, where: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, p in m.items():
        if k in _FORBIDDEN:
            raise AnyServeError("INVALID_PARAMETER", f"{where} parameter key '{k}' is not allowed")
        which = p.WhichOneof("parameter_choice")
        if which is not None:
            out[k] = getattr(p, which)
    return out


def _to_proto_params(params: Dict[str, Any], target: Any) -> None:
    for k, v in params.items():
        p = target[k]
        if isinstance(v, bool):
            p.bool_param = v
        elif isinstance(v, str):
            p.string_param = v
        elif isinstance(v, int) and abs(v) <= _SAFE:
            p.int64_param = v
        else:
            p.double_param = float(v)


def _proto_tensors(tensors: Any, raw: List[bytes], role: str, cls: Any) -> List[Tensor]:
    raw_field = f"raw_{role}_contents"
    if role == "input" and len(tensors) == 0:
        raise AnyServeError("INVALID_REQUEST", "request field 'inputs' must be a non-empty array of tensors")
    if raw and len(raw) != len(tensors):
        raise invalid_tensor(f"{raw_field} has {len(raw)} entries for {len(tensors)} {role}s; it needs one per {role}")
    seen = set()
    out = []
    for i, p in enumerate(tensors):
        if not p.name:
            raise invalid_tensor(f"{role} #{i}: name must be a non-empty string")
        label = f"{role} '{p.name}'"
        if p.name in seen:
            raise invalid_tensor(f"{label} appears more than once")
        seen.add(p.name)
        info = info_of(p.datatype, label)
        shape = check_shape(list(p.shape), label)
        params = _from_proto_params(p.parameters, label)
        filled = [k for k in CONTENTS_FIELDS if getattr(p.contents, k)] if "contents" in p._v else []
        if raw:
            if filled:
                raise invalid_tensor(f"{label}: has both contents and {raw_field}; send one or the other")
            t = cls(p.name, p.datatype, shape, parameters=params, raw=raw[i])
        else:
            if filled and (len(filled) > 1 or filled[0] != info.contents):
                raise invalid_tensor(
                    f"{label}: {p.datatype} has no typed contents field and must be sent in raw contents, got {filled[0]}"
                    if info.contents is None
                    else f"{label}: {p.datatype} data must be in {info.contents}, got {filled[0]}"
                )
            values = list(getattr(p.contents, info.contents)) if info.contents else []
            if len(values) != element_count(shape):
                raise count_mismatch(label, p.datatype, shape, len(values))
            if info.kind == "bytes":
                t = cls(p.name, p.datatype, shape, parameters=params, data=values)
            else:
                from .datatypes import pack_values

                t = cls(p.name, p.datatype, shape, parameters=params, raw=pack_values(p.datatype, values, label))
        t._role = role
        out.append(t.check(i))
    return out


def _parse_proto(cls: Any, body: bytes, what: str) -> Any:
    from ._proto.message import DecodeError

    try:
        return cls.FromString(body)
    except DecodeError as err:
        raise AnyServeError("INVALID_PROTOBUF", f"{what} is not a valid {cls.__name__}: {err}") from None


def request_from_proto(m: Any) -> ModelInferRequest:
    if len(m.id) > MAX_ID_LENGTH:
        raise AnyServeError("INVALID_REQUEST", f"request field 'id' must be at most {MAX_ID_LENGTH} characters, got {len(m.id)}")
    req = ModelInferRequest(model_name=m.model_name, id=m.id, model_version=m.model_version, parameters=_from_proto_params(m.parameters, "request"))
    for t in _proto_tensors(m.inputs, list(m.raw_input_contents), "input", InferInputTensor):
        req.inputs.append(t)
    for o in m.outputs:
        req.outputs.append(RequestedOutput(o.name, _from_proto_params(o.parameters, f"requested output '{o.name}'")))
    return req


def response_from_proto(m: Any) -> ModelInferResponse:
    res = ModelInferResponse(model_name=m.model_name, id=m.id, model_version=m.model_version, parameters=_from_proto_params(m.parameters, "response"))
    for t in _proto_tensors(m.outputs, list(m.raw_output_contents), "output", InferOutputTensor):
        res.outputs.append(t)
    return res


def response_to_proto(res: ModelInferResponse) -> Any:
    """A response as a ``ModelInferResponse`` message, outputs in ``raw_output_contents`` (as the TypeScript codec writes)."""
    from ._proto import grpc_predict_v2_pb2 as pb

    m = pb.ModelInferResponse(model_name=res.model_name, model_version=res.model_version, id=res.id)
    _to_proto_params(res.parameters, m.parameters)
    _tensors_to_proto(res.outputs, m.outputs, m.raw_output_contents)
    return m


def _tensors_to_proto(tensors: List[Tensor], messages: Any, raw: Any) -> None:
    for i, t in enumerate(tensors):
        t.check(i)
        o = messages.add(name=t.name, datatype=t.datatype, shape=t.shape)
        _to_proto_params(t.parameters, o.parameters)
        raw.append(t.raw)


def request_to_proto(req: ModelInferRequest) -> Any:
    from ._proto import grpc_predict_v2_pb2 as pb

    m = pb.ModelInferRequest(model_name=req.model_name, model_version=req.model_version, id=req.id)
    _to_proto_params(req.parameters, m.parameters)
    _tensors_to_proto(req.inputs, m.inputs, m.raw_input_contents)
    for o in req.outputs:
        r = m.outputs.add(name=o.name)
        _to_proto_params(o.parameters, r.parameters)
    return m


# ── the façade ───────────────────────────────────────────────────────────────────────────────────


def decode_request(body: bytes, content_type: Optional[str] = None, header_length: Optional[int] = None) -> ModelInferRequest:
    """A request body in whatever form it came: JSON, JSON with binary tensors, or protobuf."""
    if format_of(content_type) == "protobuf":
        from ._proto import grpc_predict_v2_pb2 as pb

        return request_from_proto(_parse_proto(pb.ModelInferRequest, body, "request"))
    return decode_json_request(body, header_length)


def encode_response(res: ModelInferResponse, fmt: str, req: Optional[ModelInferRequest] = None) -> Encoded:
    """A response in the format the caller asked for (``json`` — binary outputs when the request asked — or ``protobuf``)."""
    if fmt == "protobuf":
        return response_to_proto(res).SerializeToString(), PROTOBUF, None
    if req is not None and getattr(req, "json_form", None) == "contents":
        return encode_contents_response(res)
    return encode_json_response(res, req)


def decode_response(body: bytes, content_type: Optional[str] = None, header_length: Optional[int] = None) -> ModelInferResponse:
    if format_of(content_type) == "protobuf":
        from ._proto import grpc_predict_v2_pb2 as pb

        return response_from_proto(_parse_proto(pb.ModelInferResponse, body, "response"))
    return decode_json_response(body, header_length)


__all__ = [
    "format_of",
    "decode_request",
    "encode_response",
    "decode_response",
    "encode_json_request",
    "decode_json_request",
    "encode_json_response",
    "decode_json_response",
    "request_from_proto",
    "request_to_proto",
    "response_from_proto",
    "response_to_proto",
    "tensor_from_json",
    "parse_bytes_elements",
]
