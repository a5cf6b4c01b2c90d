"""OIP v2 protobuf messages without the ``protobuf`` package: ``from anyserve._proto import grpc_predict_v2_pb2``."""
from . import grpc_predict_v2_pb2

__all__ = ["grpc_predict_v2_pb2"]
