"""anyserve's Python SDK: the seed's app API for handlers that run in anyserve's Python workers.

Standard library only (numpy is used when importable, never required). The replica puts this
package on its workers' ``PYTHONPATH``; nothing needs ``pip install``. See docs/python.md.

Example::

    from anyserve import AnyServe

    app = AnyServe()

    @app.capability(type="chat", model="demo")
    def chat(request, context):
        text = request.inputs["text"].bytes_contents[0].decode()
        return {"text": f"you said: {text}", "replica": context.replica_id}
"""
import sys as _sys

if _sys.version_info < (3, 9):  # pragma: no cover - checked before anything else loads
    raise ImportError(f"anyserve's Python SDK needs Python 3.9 or newer; this is {_sys.version.split()[0]} ({_sys.executable})")

from .app import AnyServe, HandlerEntry, Worker, WorkerInfo
from .capability import Capability
from .context import Cancellation, Context
from .errors import AnyServeError
from .messages import (
    InferInputTensor,
    InferOutputTensor,
    InferTensorContents,
    ModelInferRequest,
    ModelInferResponse,
    Tensor,
)
from .objects import ObjectStore, ObjRef
from .service import LocalServices, Service, ServiceContext, ServiceTask
from .stream import Stream

__version__ = "0.1.0"

#: The app the module-level decorators register on (``@model("m")``, ``@infer``).
default_app = AnyServe()


def model(name, version=None, **options):
    """``@model("name")``: registers a handler for capability ``{model: name}`` on :data:`default_app`."""
    return default_app.model(name, version, **options)


def infer(fn=None, **capability):
    """``@infer`` / ``@infer(type="chat")``: registers a handler on :data:`default_app` (all requests when bare)."""
    if fn is not None and callable(fn):
        return default_app.capability()(fn)
    return default_app.capability(**capability)


__all__ = [
    "AnyServe",
    "AnyServeError",
    "Capability",
    "Cancellation",
    "Context",
    "HandlerEntry",
    "InferInputTensor",
    "InferOutputTensor",
    "InferTensorContents",
    "LocalServices",
    "ModelInferRequest",
    "ModelInferResponse",
    "ObjRef",
    "ObjectStore",
    "Service",
    "ServiceContext",
    "ServiceTask",
    "Stream",
    "Tensor",
    "Worker",
    "WorkerInfo",
    "default_app",
    "infer",
    "model",
]
