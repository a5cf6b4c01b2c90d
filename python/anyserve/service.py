"""SAGE's service classes, in Python.

**Deployed** (``app: ./kv_service.py:KVService``): each public method of the class becomes the
capability ``{service: <name>, method: <method>}`` — exactly as a TypeScript class service — and
``process``, when the class has it, is registered first, so ``{service: <name>}`` alone reaches it.
One instance per worker process serves every method (all methods of a service share its worker
processes); the hooks ``setup`` and ``start`` run when it starts, ``stop``, ``cleanup`` and
``close`` when it stops. Arguments travel as JSON (input ``args``, an array; ``kwargs``, an
object), the answer as JSON (output ``result``), so TypeScript's ``env.callService("kv").get("k")``
and Python's ``context.call_service("kv").get("k")`` read like local calls.

**Local** (:class:`ServiceTask`): SAGE's service task — an instance with a context, a request
queue served by a thread, statistics, idempotent start/stop, usable as ``with ServiceTask(...)``.

Example::

    class KVService(Service):
        def __init__(self):
            self.data = {}
        def set(self, key, value):
            self.data[key] = value
            return True
        def get(self, key):
            return self.data.get(key)
        def describe(self):
            return {"size": len(self.data), "replica": self.ctx.replica_id}
"""
from __future__ import annotations

import contextvars
import inspect
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Dict, List, Optional

from .app import AnyServe, WorkerInfo
from .context import Context, ServiceProxy, service_inputs, unwrap_result
from .errors import AnyServeError

#: Lifecycle methods, never exposed as capabilities.
SERVICE_HOOKS = frozenset(("setup", "start", "stop", "cleanup", "close"))

_current_request: "contextvars.ContextVar[Optional[Context]]" = contextvars.ContextVar("anyserve_service_request", default=None)


class ServiceContext:
    """What a service instance knows about where it runs, and how it calls other services."""

    def __init__(self, service_name: str, replica_id: str = "", worker: str = "", logger: Optional[logging.Logger] = None) -> None:
        self.service_name = service_name
        self.replica_id = replica_id
        self.worker = worker
        self.logger = logger or logging.getLogger(f"anyserve.service.{service_name}")

    @property
    def request(self) -> Optional[Context]:
        """The request being served, while a method runs."""
        return _current_request.get()

    def call_service(self, name: str) -> ServiceProxy:
        """``self.ctx.call_service("other").method(*args)`` through the router, within the current request's deadline."""

        def send(method: str, args: tuple, kwargs: Dict[str, Any]) -> Any:
            ctx = _current_request.get()
            if ctx is None:
                raise AnyServeError("INTERNAL", f"call_service({name!r}).{method}() is only available while a request is being served")
            return unwrap_result(ctx.call({"service": name, "method": method}, service_inputs(args, kwargs)))

        return ServiceProxy(send, name)


class Service:
    """Optional base class: ``self.ctx`` (a :class:`ServiceContext`) is set before ``__init__`` runs."""

    ctx: ServiceContext


def is_service_class(value: Any) -> bool:
    return inspect.isclass(value)


def service_methods(cls: type) -> List[str]:
    """Public methods of the class, own and inherited (not hooks, not ``_private``), ``process`` first."""
    names: List[str] = []
    for klass in cls.__mro__:
        if klass in (object, Service):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in SERVICE_HOOKS or name in names:
                continue
            if isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value):
                names.append(name)
    if "process" in names:
        names.remove("process")
        names.insert(0, "process")
    return names


def instantiate(cls: type, ctx: ServiceContext, args: tuple = (), kwargs: Optional[Dict[str, Any]] = None) -> Any:
    """A new instance with ``ctx`` set before its ``__init__`` runs."""
    obj = cls.__new__(cls)
    try:
        obj.ctx = ctx
    except AttributeError:
        pass
    obj.__init__(*args, **(kwargs or {}))
    return obj


def call_hook(instance: Any, hook: str) -> None:
    fn = getattr(instance, hook, None)
    if callable(fn):
        result = fn()
        if inspect.isawaitable(result):
            import asyncio

            async def wait() -> Any:
                return await result

            asyncio.run(wait())


def _json_arg(req: Any, name: str, kind: type, default: Any) -> Any:
    tensor = req.inputs.get(name)
    if tensor is None:
        return default
    text = tensor.data[0].decode("utf-8") if tensor.data else ""
    try:
        value = json.loads(text)
    except ValueError:
        raise AnyServeError("INVALID_REQUEST", f"input '{name}': expected a JSON {kind.__name__}, got {text[:64]!r}") from None
    if not isinstance(value, kind):
        raise AnyServeError("INVALID_REQUEST", f"input '{name}': expected a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def result_output(result: Any) -> Dict[str, Any]:
    """A method's answer as one JSON output ``result`` (so arrays and dicts come back exactly)."""
    from .objects import ObjRef

    def default(v: Any) -> Any:
        if isinstance(v, ObjRef):
            return v.to_string()
        if type(v).__module__ == "numpy" and hasattr(v, "tolist"):
            return v.tolist()
        raise TypeError(f"{type(v).__name__} is not JSON serializable")

    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=default)
    return {"outputs": [{"name": "result", "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "application/json"}, "data": [text]}]}


#: Which process's instance a call meets under ``multi``/``pool``/``process`` (the class's
#: ``affinity`` attribute): ``key`` (default) the one owning the call's first argument,
#: ``instance`` always one, ``none`` any (docs/execution.md, "Class services").
SERVICE_AFFINITIES = ("key", "instance", "none")


def service_app(name: str, cls: type, args: tuple = (), kwargs: Optional[Dict[str, Any]] = None) -> AnyServe:
    """The app serving a class: one capability per public method, one instance per worker process."""
    methods = service_methods(cls)
    if not methods:
        raise TypeError(f"service class {cls.__name__} has no public methods to serve")
    affinity = getattr(cls, "affinity", "key")
    if affinity not in SERVICE_AFFINITIES:
        raise TypeError(f"service class {cls.__name__}: affinity must be one of {', '.join(SERVICE_AFFINITIES)}, got {affinity!r}")
    app = AnyServe(name)
    # What the replica needs to pin calls (by the first argument, by default) and to log the model.
    app.service = {"name": name, "class": cls.__name__, "affinity": affinity}
    state: Dict[str, Any] = {}

    def start(info: WorkerInfo) -> None:
        ctx = ServiceContext(name, info.replica_id, info.worker)
        instance = instantiate(cls, ctx, args, kwargs)
        call_hook(instance, "setup")
        call_hook(instance, "start")
        state["instance"] = instance

    def stop(info: WorkerInfo) -> None:
        instance = state.pop("instance", None)
        if instance is not None:
            for hook in ("stop", "cleanup", "close"):
                call_hook(instance, hook)

    def handler_for(method: str) -> Callable[..., Any]:
        target = getattr(cls, method)
        if inspect.iscoroutinefunction(target):

            async def run_async(request: Any, context: Context) -> Any:
                a, kw = _json_arg(request, "args", list, []), _json_arg(request, "kwargs", dict, {})
                token = _current_request.set(context)
                try:
                    return result_output(await getattr(state["instance"], method)(*a, **kw))
                finally:
                    _current_request.reset(token)

            return run_async

        def run(request: Any, context: Context) -> Any:
            a, kw = _json_arg(request, "args", list, []), _json_arg(request, "kwargs", dict, {})
            token = _current_request.set(context)
            try:
                return result_output(getattr(state["instance"], method)(*a, **kw))
            finally:
                _current_request.reset(token)

        return run

    first = 0
    for i, method in enumerate(methods):
        fn = handler_for(method)
        app.capability(
            service=name,
            method=method,
            inputs=[{"name": "args", "datatype": "BYTES", "shape": [1]}],
            outputs=[{"name": "result", "datatype": "BYTES", "shape": [1]}],
            example={"args": json.dumps(_param_names(getattr(cls, method)))},
        )(fn)
        entry = app.handlers[-1]
        entry.unit = first
        if i == 0:
            entry.start_hook, entry.stop_hook = start, stop
    return app


def _param_names(fn: Any) -> List[str]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    return [p.name for p in params[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


# ── SAGE's service task (local) ──────────────────────────────────────────────────────────────────


class ServiceTask:
    """A service instance served locally: ``call(method, *args)``, a request queue, statistics.

    Results are ``{"success": True, "result": …}`` or ``{"success": False, "error": "…"}``; a task
    needs a context (:class:`ServiceContext`, or a :class:`LocalServices` registry's) before it starts.
    """

    def __init__(self, service: Any, name: Optional[str] = None, context: Optional[ServiceContext] = None, *, args: tuple = (), kwargs: Optional[Dict[str, Any]] = None) -> None:
        self._factory = service if inspect.isclass(service) else None
        self.service = None if self._factory else service
        self.service_name = name or (service.__name__ if inspect.isclass(service) else type(service).__name__)
        self.context = context
        self._args, self._kwargs = args, kwargs
        self.requests: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self.is_running = False
        self.request_count = 0
        self.error_count = 0
        self.last_activity_time: Optional[float] = None
        self.created_time = time.time()
        self._set_up = False

    @property
    def service_type(self) -> str:
        return (self._factory or type(self.service)).__name__

    def set_context(self, context: ServiceContext) -> None:
        self.context = context

    def setup(self) -> None:
        """Creates the instance (its context injected first) and runs its ``setup``."""
        if self.context is None:
            raise RuntimeError(f"service task '{self.service_name}' needs a context before it starts: set_context(ServiceContext(...))")
        if self.service is None:
            self.service = instantiate(self._factory, self.context, self._args, self._kwargs)  # type: ignore[arg-type]
        else:
            try:
                self.service.ctx = self.context
            except AttributeError:
                pass
        call_hook(self.service, "setup")

    def start(self) -> "ServiceTask":
        with self._lock:
            if self.is_running:
                return self
            if not self._set_up:
                self.setup()
                self._set_up = True
            call_hook(self.service, "start")
            self.is_running = True
            self._thread = threading.Thread(target=self._serve, name=f"service-{self.service_name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if not self.is_running:
                return
            self.is_running = False
            self.requests.put(None)
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        call_hook(self.service, "stop")

    def cleanup(self) -> None:
        """Stops, then runs the service's ``cleanup`` and ``close``."""
        self.stop()
        if self.service is not None:
            call_hook(self.service, "cleanup")
            call_hook(self.service, "close")

    def call(self, method: str, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        self.last_activity_time = time.time()
        with self._lock:
            self.request_count += 1
        fn = getattr(self.service, method, None) if self.service is not None and not method.startswith("_") else None
        if fn is None or not callable(fn) or method in SERVICE_HOOKS:
            return self._fail(f"service '{self.service_name}' has no method '{method}'")
        try:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                import asyncio

                async def wait() -> Any:
                    return await result

                result = asyncio.run(wait())
            return {"success": True, "result": result}
        except Exception as err:  # noqa: BLE001 - reported, as SAGE does
            return self._fail(f"{type(err).__name__}: {err}")

    def _fail(self, message: str) -> Dict[str, Any]:
        with self._lock:
            self.error_count += 1
        return {"success": False, "error": message}

    def put(self, request: Dict[str, Any]) -> "Future[Dict[str, Any]]":
        """Queues ``{"method", "args"?, "kwargs"?, "request_id"?}``; the answer comes in the returned future
        (and in ``request["response_queue"]`` when the request has one)."""
        future: "Future[Dict[str, Any]]" = Future()
        self.requests.put(dict(request, _future=future))
        return future

    def _serve(self) -> None:
        while True:
            req = self.requests.get()
            if req is None:
                return
            answer = self.call(req.get("method", "process"), *req.get("args", ()), **req.get("kwargs", {}))
            answer["request_id"] = req.get("request_id")
            req["_future"].set_result(answer)
            q = req.get("response_queue")
            if q is not None:
                q.put(answer)

    def get_statistics(self) -> Dict[str, Any]:
        return {
            "service_name": self.service_name,
            "service_type": self.service_type,
            "is_running": self.is_running,
            "request_count": self.request_count,
            "error_count": self.error_count,
            "last_activity_time": self.last_activity_time,
            "created_time": self.created_time,
            "queue_size": self.requests.qsize(),
        }

    def __enter__(self) -> "ServiceTask":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class LocalServices:
    """Services of one process calling each other by name, synchronously or asynchronously."""

    def __init__(self) -> None:
        self.tasks: Dict[str, ServiceTask] = {}

    def register(self, name: str, service: Any, **kw: Any) -> ServiceTask:
        task = ServiceTask(service, name, _LocalContext(self, name), **kw)
        self.tasks[name] = task
        return task

    def call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        task = self.tasks.get(name)
        if task is None:
            raise AnyServeError("SERVICE_NOT_FOUND", f"no service named '{name}'; have {sorted(self.tasks)}")
        answer = task.call(method, *args, **kwargs)
        if not answer["success"]:
            raise AnyServeError("WORKER_ERROR", answer["error"])
        return answer["result"]

    def start_all(self) -> None:
        for t in self.tasks.values():
            t.start()

    def stop_all(self) -> None:
        for t in self.tasks.values():
            t.stop()


class _LocalContext(ServiceContext):
    def __init__(self, services: LocalServices, name: str) -> None:
        super().__init__(name, replica_id="local", worker="local")
        self._services = services

    def call_service(self, name: str) -> ServiceProxy:
        return ServiceProxy(lambda method, args, kwargs: self._services.call(name, method, *args, **kwargs), name)

    def call_service_async(self, name: str) -> ServiceProxy:
        """Methods that return a ``concurrent.futures.Future`` (``await asyncio.wrap_future(f)`` in async code)."""

        def send(method: str, args: tuple, kwargs: Dict[str, Any]) -> "Future[Any]":
            task = self._services.tasks.get(name)
            if task is None:
                raise AnyServeError("SERVICE_NOT_FOUND", f"no service named '{name}'")
            inner = task.put({"method": method, "args": args, "kwargs": kwargs})
            outer: "Future[Any]" = Future()

            def done(f: "Future[Dict[str, Any]]") -> None:
                a = f.result()
                if a["success"]:
                    outer.set_result(a["result"])
                else:
                    outer.set_exception(AnyServeError("WORKER_ERROR", a["error"]))

            inner.add_done_callback(done)
            return outer

        return ServiceProxy(send, name)


__all__ = [
    "Service",
    "ServiceContext",
    "ServiceTask",
    "LocalServices",
    "service_app",
    "service_methods",
    "SERVICE_HOOKS",
]
