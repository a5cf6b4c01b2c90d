"""The seed's app: handlers registered under capabilities.

Example::

    from anyserve import AnyServe, Worker

    app = AnyServe()

    @app.capability(type="chat", model="llama-70b")
    def chat(request, context):                       # fn(request) or fn(request, context): arity decides
        return {"text": "hello " + request.inputs["text"].bytes_contents[0].decode()}

    @app.model("embedder", version="1")                # capability {model: embedder, version: 1}
    def embed(request):
        return [0.1, 0.2, 0.3]

    @app.capability(type="stream", stream=True)        # fn(request, context, stream), or a generator
    def tokens(request, context):
        yield from ["a", "b"]

    @app.capability(type="embed-batch", batch=True)    # a list of requests in, a list of answers out
    def embed_many(requests, contexts):
        return [[0.0] * 8 for _ in requests]

    @app.worker(type="heavy", lazy=True)               # one instance per worker process
    class Heavy(Worker):
        def on_start(self): self.model = load_model()
        def on_stop(self): self.model = None
        def handle(self, request, context): return self.model(request)

Reserved keywords of ``capability`` (not capability keys): ``stream``, ``batch``, ``lazy``,
``on_start``, ``on_stop``, ``example``, ``inputs``, ``outputs``, ``platform``.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

from .capability import Capability, normalize

_OPTIONS = ("stream", "batch", "lazy", "on_start", "on_stop", "example", "inputs", "outputs", "platform")


def positional_arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (a ``*args`` counts as many)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 2
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return 99
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _is_generator(fn: Any) -> bool:
    target = getattr(fn, "__call__", None) if not inspect.isfunction(fn) and not inspect.ismethod(fn) else fn
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn) or (
        target is not None and (inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target))
    )


class WorkerInfo:
    """What a lifecycle hook learns about the worker it runs in."""

    __slots__ = ("capability", "replica_id", "worker")

    def __init__(self, capability: Dict[str, str], replica_id: str, worker: str) -> None:
        self.capability = capability
        self.replica_id = replica_id
        self.worker = worker

    def __repr__(self) -> str:
        return f"WorkerInfo(capability={self.capability!r}, replica_id={self.replica_id!r}, worker={self.worker!r})"


def _call_hook(hook: Optional[Callable[..., Any]], info: WorkerInfo) -> None:
    if hook is None:
        return
    result = hook(info) if positional_arity(hook) >= 1 else hook()
    if inspect.isawaitable(result):
        import asyncio

        asyncio.run(_await(result))


async def _await(x: Any) -> Any:
    return await x


class HandlerEntry:
    """One registered handler: its capability, function and options.

    ``unit`` is the index of the handler whose start/stop hooks make this one ready: its own for a
    function, the first method's for every method of a class service (one instance per worker
    process serves them all). Workers of one unit are shared by its handlers.
    """

    def __init__(self, capability: Capability, fn: Optional[Callable[..., Any]], *, stream: bool, batch: bool, options: Dict[str, Any]) -> None:
        self.capability = capability
        self.fn = fn
        self.is_stream = stream
        self.batch = batch
        self.options = options
        self.unit = -1
        self.uses_context = fn is not None and positional_arity(fn) >= 2
        #: A stream handler of the seed's form ``fn(request, context, stream)``.
        self.takes_stream = fn is not None and stream and positional_arity(fn) >= 3
        self.start_hook: Callable[[WorkerInfo], None] = lambda info: _call_hook(options.get("on_start"), info)
        self.stop_hook: Callable[[WorkerInfo], None] = lambda info: _call_hook(options.get("on_stop"), info)

    @property
    def handler(self) -> Optional[Callable[..., Any]]:
        """The function (the seed's name)."""
        return self.fn

    @property
    def lazy(self) -> bool:
        return bool(self.options.get("lazy"))

    @property
    def is_async(self) -> bool:
        fn = self.fn
        if fn is None:
            return False
        call = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)
        return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)

    def bind(self, fn: Callable[..., Any]) -> None:
        """Sets the function once the unit started (a Worker's ``handle``, a service's method)."""
        self.fn = fn
        self.uses_context = positional_arity(fn) >= 2
        self.takes_stream = self.is_stream and positional_arity(fn) >= 3

    def describe(self) -> Dict[str, Any]:
        """What the replica needs to route and run it (``python -m anyserve.describe``)."""
        d: Dict[str, Any] = {
            "capability": self.capability.to_dict(),
            "stream": self.is_stream,
            "batch": self.batch,
            "lazy": self.lazy,
            "unit": self.unit,
        }
        for k in ("example", "inputs", "outputs", "platform"):
            if self.options.get(k) is not None:
                d[k] = self.options[k]
        return d

    def __iter__(self) -> Any:
        # `handler, uses_context = app.find_handler(...)`, as the seed's lookups were used.
        return iter((self.fn, self.uses_context))

    def __repr__(self) -> str:
        return f"HandlerEntry({self.capability!r}, stream={self.is_stream}, batch={self.batch})"


class Worker:
    """The seed's Phase 5 worker: one instance per worker process, ``on_start`` before it serves,
    ``on_stop`` when it stops (idle, scale-down, replica stop). ``handle(request, context)`` (or
    ``__call__``) serves requests; a generator ``handle`` streams."""

    def on_start(self) -> None:
        """Load the model here."""

    def on_stop(self) -> None:
        """Free it here."""

    def handle(self, request: Any, context: Any) -> Any:  # pragma: no cover - meant to be overridden
        raise NotImplementedError(f"{type(self).__name__}.handle is not implemented")


class AnyServe:
    """An app: ``@app.capability(**kv)``, ``@app.model(name)``, ``@app.worker(**kv)`` (see the module doc)."""

    def __init__(self, name: Optional[str] = None) -> None:
        self.name = name
        self.handlers: List[HandlerEntry] = []
        #: A class service's ``{name, class, affinity}`` (service.py), else None.
        self.service: Optional[Dict[str, Any]] = None

    def _add(self, entry: HandlerEntry, unit: Optional[int] = None) -> HandlerEntry:
        if entry.is_stream and entry.batch:
            raise TypeError("a handler cannot both stream and take batches")
        entry.unit = len(self.handlers) if unit is None else unit
        self.handlers.append(entry)
        return entry

    def capability(self, stream: Optional[bool] = None, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers the decorated function under ``Capability(attrs)``; returns it unchanged."""
        options = {k: attrs.pop(k) for k in _OPTIONS[1:] if k in attrs}
        cap = Capability(attrs)
        for hook in ("on_start", "on_stop"):
            if options.get(hook) is not None and not callable(options[hook]):
                raise TypeError(f"{hook} must be callable, got {type(options[hook]).__name__}")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(fn):
                raise TypeError(f"handler for {cap!r} must be callable, got {type(fn).__name__}")
            streams = _is_generator(fn) if stream is None else bool(stream)
            self._add(HandlerEntry(cap, fn, stream=streams, batch=bool(options.get("batch")), options=options))
            return fn

        return register

    def model(self, name: str, version: Optional[str] = None, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Registers a model handler: capability ``{model: name}`` (plus ``version``)."""
        attrs: Dict[str, Any] = {"model": name}
        if version is not None:
            attrs["version"] = version
        return self.capability(**attrs, **options)

    def worker(self, cls: Optional[type] = None, **attrs: Any) -> Any:
        """Registers a :class:`Worker` subclass (``app.worker(Cls, type="heavy")`` or as a class decorator).

        Its capability is ``attrs`` or the class's ``capability`` dict; ``lazy`` and ``stream`` may
        also be class attributes.
        """

        def register(c: type) -> type:
            given = dict(getattr(c, "capability", None) or {})
            given.update(attrs)
            options = {k: given.pop(k) for k in _OPTIONS if k in given}
            options.setdefault("lazy", bool(getattr(c, "lazy", False)))
            handle = getattr(c, "handle", None) if getattr(c, "handle", None) is not Worker.handle else getattr(c, "__call__", None)
            streams = bool(options.pop("stream", getattr(c, "stream", False))) or _is_generator(handle)
            entry = HandlerEntry(Capability(given), None, stream=streams, batch=bool(options.get("batch")), options=options)
            holder: Dict[str, Any] = {}

            def start(info: WorkerInfo) -> None:
                instance = c()
                start_hook = getattr(instance, "on_start", None)
                if start_hook is not None:
                    _call_hook(start_hook, info)
                holder["instance"] = instance
                method = instance.handle if type(instance).handle is not Worker.handle else instance  # type: ignore[attr-defined]
                entry.bind(method)

            def stop(info: WorkerInfo) -> None:
                instance = holder.pop("instance", None)
                if instance is not None and getattr(instance, "on_stop", None) is not None:
                    _call_hook(instance.on_stop, info)

            entry.start_hook, entry.stop_hook = start, stop
            self._add(entry)
            return c

        return register(cls) if cls is not None else register

    # ── lookups ──

    def get_capabilities(self) -> List[Dict[str, str]]:
        """One capability dict per handler, in registration order."""
        return [h.capability.to_dict() for h in self.handlers]

    def find_handler(self, query: Optional[Dict[str, Any]] = None) -> Optional[HandlerEntry]:
        """The first non-streaming handler matching ``query``."""
        q = normalize(query, "query")
        return next((h for h in self.handlers if not h.is_stream and h.capability.matches(q)), None)

    def find_stream_handler(self, query: Optional[Dict[str, Any]] = None) -> Optional[HandlerEntry]:
        """The first streaming handler matching ``query``."""
        q = normalize(query, "query")
        return next((h for h in self.handlers if h.is_stream and h.capability.matches(q)), None)

    def find_any_handler(self, query: Optional[Dict[str, Any]] = None) -> Optional[HandlerEntry]:
        """The first handler of either kind matching ``query`` (``.is_stream`` says which)."""
        q = normalize(query, "query")
        return next((h for h in self.handlers if h.capability.matches(q)), None)

    def describe(self) -> List[Dict[str, Any]]:
        return [h.describe() for h in self.handlers]

    def __repr__(self) -> str:
        return f"AnyServe({len(self.handlers)} handlers: {', '.join(str(h.capability) for h in self.handlers)})"


def unit_entries(app: AnyServe, unit: int) -> List[Tuple[int, HandlerEntry]]:
    return [(i, h) for i, h in enumerate(app.handlers) if h.unit == unit]


__all__ = ["AnyServe", "HandlerEntry", "Worker", "WorkerInfo", "positional_arity", "unit_entries"]
