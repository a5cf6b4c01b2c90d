"""The Open Inference Protocol v2 messages (``proto/grpc_predict_v2.proto``, package ``inference``),
as the ``protobuf`` package's generated module would offer them, on the standard-library runtime of
``message.py`` (anyserve's Python SDK needs no ``pip install``).

The seed's stream handlers use them like this::

    from anyserve._proto import grpc_predict_v2_pb2 as pb

    resp = pb.ModelStreamInferResponse(error_message="", infer_response=pb.ModelInferResponse(model_name="m", id="1"))
    out = resp.infer_response.outputs.add()
    out.name = "text"
    out.datatype = "BYTES"
    out.shape.append(1)
    out.contents.bytes_contents.append(b"hello")
    stream.send(resp)
"""
from __future__ import annotations

from .message import DecodeError, Field, Message

__all__ = [
    "DecodeError",
    "InferParameter",
    "InferTensorContents",
    "ModelInferRequest",
    "ModelInferResponse",
    "ModelStreamInferResponse",
    "ModelMetadataRequest",
    "ModelMetadataResponse",
    "ModelReadyRequest",
    "ModelReadyResponse",
    "ServerLiveRequest",
    "ServerLiveResponse",
    "ServerReadyRequest",
    "ServerReadyResponse",
]


class InferParameter(Message):
    FIELDS = (
        Field("bool_param", 1, "bool", oneof="parameter_choice"),
        Field("int64_param", 2, "int64", oneof="parameter_choice"),
        Field("string_param", 3, "string", oneof="parameter_choice"),
        Field("double_param", 4, "double", oneof="parameter_choice"),
        Field("uint64_param", 5, "uint64", oneof="parameter_choice"),
    )


class InferTensorContents(Message):
    FIELDS = (
        Field("bool_contents", 1, "bool", repeated=True),
        Field("int_contents", 2, "int32", repeated=True),
        Field("int64_contents", 3, "int64", repeated=True),
        Field("uint_contents", 4, "uint32", repeated=True),
        Field("uint64_contents", 5, "uint64", repeated=True),
        Field("fp32_contents", 6, "float", repeated=True),
        Field("fp64_contents", 7, "double", repeated=True),
        Field("bytes_contents", 8, "bytes", repeated=True),
    )


def _tensor_fields():
    return (
        Field("name", 1, "string"),
        Field("datatype", 2, "string"),
        Field("shape", 3, "int64", repeated=True),
        Field("parameters", 4, "map", message=InferParameter),
        Field("contents", 5, "message", message=InferTensorContents),
    )


class _InferInputTensor(Message):
    FIELDS = _tensor_fields()


class _InferRequestedOutputTensor(Message):
    FIELDS = (Field("name", 1, "string"), Field("parameters", 2, "map", message=InferParameter))


class _InferOutputTensor(Message):
    FIELDS = _tensor_fields()


class ModelInferRequest(Message):
    InferInputTensor = _InferInputTensor
    InferRequestedOutputTensor = _InferRequestedOutputTensor
    FIELDS = (
        Field("model_name", 1, "string"),
        Field("model_version", 2, "string"),
        Field("id", 3, "string"),
        Field("parameters", 4, "map", message=InferParameter),
        Field("inputs", 5, "message", repeated=True, message=_InferInputTensor),
        Field("outputs", 6, "message", repeated=True, message=_InferRequestedOutputTensor),
        Field("raw_input_contents", 7, "bytes", repeated=True),
    )


class ModelInferResponse(Message):
    InferOutputTensor = _InferOutputTensor
    FIELDS = (
        Field("model_name", 1, "string"),
        Field("model_version", 2, "string"),
        Field("id", 3, "string"),
        Field("parameters", 4, "map", message=InferParameter),
        Field("outputs", 5, "message", repeated=True, message=_InferOutputTensor),
        Field("raw_output_contents", 6, "bytes", repeated=True),
    )


class ModelStreamInferResponse(Message):
    FIELDS = (Field("error_message", 1, "string"), Field("infer_response", 2, "message", message=ModelInferResponse))


class _TensorMetadata(Message):
    FIELDS = (Field("name", 1, "string"), Field("datatype", 2, "string"), Field("shape", 3, "int64", repeated=True))


class ModelMetadataRequest(Message):
    FIELDS = (Field("name", 1, "string"), Field("version", 2, "string"))


class ModelMetadataResponse(Message):
    TensorMetadata = _TensorMetadata
    FIELDS = (
        Field("name", 1, "string"),
        Field("versions", 2, "string", repeated=True),
        Field("platform", 3, "string"),
        Field("inputs", 4, "message", repeated=True, message=_TensorMetadata),
        Field("outputs", 5, "message", repeated=True, message=_TensorMetadata),
    )


class ModelReadyRequest(Message):
    FIELDS = (Field("name", 1, "string"), Field("version", 2, "string"))


class ModelReadyResponse(Message):
    FIELDS = (Field("ready", 1, "bool"),)


class ServerLiveRequest(Message):
    FIELDS = ()


class ServerLiveResponse(Message):
    FIELDS = (Field("live", 1, "bool"),)


class ServerReadyRequest(Message):
    FIELDS = ()


class ServerReadyResponse(Message):
    FIELDS = (Field("ready", 1, "bool"),)
