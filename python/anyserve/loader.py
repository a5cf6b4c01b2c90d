"""Loading an app from ``FILE[:export]`` the way a worker does: ``./chat_app.py:app`` (the app
object) or ``./kv_service.py:KVService`` (a class, served as a class service). Without an export
name, ``app`` is looked for. The seed's dotted form (``examples.chat_app:app``) works too. The
app's folder goes first on ``sys.path``, as when running ``python chat_app.py``, so its own
modules import.

Errors are :class:`AppLoadError` with a ``kind``: ``not_found`` (no such file), ``import_failed``
(the module raised; the message names the Python error) or ``no_export`` (with a did-you-mean
over what the module does export that could be served).
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from typing import Any, List, Optional, Tuple

from .app import AnyServe
from .service import service_app


class AppLoadError(Exception):
    def __init__(self, kind: str, message: str, file: str = "", servable: Optional[List[str]] = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.file = file
        self.servable = servable or []


def split_spec(spec: str) -> Tuple[str, Optional[str]]:
    colon = spec.rfind(":")
    if colon > 1:
        return spec[:colon], spec[colon + 1 :] or None
    return spec, None


def _import_file(path: str) -> Any:
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem if re.match(r"^[A-Za-z_]\w*$", stem) and stem not in sys.modules else "__anyserve_app__"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError("import_failed", f"{path} cannot be loaded as a Python module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as err:  # noqa: BLE001 - the app's own error, reported with its type
        sys.modules.pop(name, None)
        if isinstance(err, (KeyboardInterrupt, SystemExit)) and not isinstance(err, SystemExit):
            raise
        raise AppLoadError("import_failed", f"{path} failed to load: {type(err).__name__}: {err}", path) from err
    return module


def load_module(file_spec: str, cwd: Optional[str] = None) -> Tuple[Any, str]:
    base = cwd or os.getcwd()
    path = os.path.abspath(os.path.join(base, file_spec))
    if os.path.isfile(path):
        return _import_file(path), path
    if os.path.isfile(path + ".py"):
        return _import_file(path + ".py"), path + ".py"
    if re.match(r"^[\w.]+$", file_spec) and not file_spec.endswith(".py"):
        if base not in sys.path:
            sys.path.insert(0, base)
        try:
            return importlib.import_module(file_spec), file_spec
        except ModuleNotFoundError as err:
            if err.name and file_spec.startswith(err.name):
                raise AppLoadError("not_found", f"app file not found: {file_spec} (looked for {path}, {path}.py and module {file_spec})", path) from None
            raise AppLoadError("import_failed", f"{file_spec} failed to load: {type(err).__name__}: {err}", path) from err
        except Exception as err:  # noqa: BLE001
            raise AppLoadError("import_failed", f"{file_spec} failed to load: {type(err).__name__}: {err}", path) from err
    raise AppLoadError("not_found", f"app file not found: {file_spec} (looked for {path} and {path}.py)", path)


def _servable(value: Any) -> bool:
    return isinstance(value, AnyServe) or (inspect.isclass(value) and value.__module__ not in ("builtins",) and not issubclass(value, BaseException))


def load_app(spec: str, service: Optional[str] = None, cwd: Optional[str] = None, args: tuple = ()) -> AnyServe:
    """The app ``spec`` names; a class becomes a class service named ``service`` (default:
    ``$ANYSERVE_SERVICE``, then the class's export name)."""
    file_spec, export = split_spec(spec)
    module, path = load_module(file_spec, cwd)
    names = [export] if export else ["app"]
    for name in names:
        value = getattr(module, name, None)
        if isinstance(value, AnyServe):
            return value
        if inspect.isclass(value):
            return service_app(service or os.environ.get("ANYSERVE_SERVICE") or name, value, args)
    if not export:
        # An app written with the module-level decorators (`@anyserve.model("m")`, `@infer`).
        import anyserve

        if anyserve.default_app.handlers:
            return anyserve.default_app
    own = [k for k, v in vars(module).items() if not k.startswith("_") and _servable(v) and (isinstance(v, AnyServe) or getattr(v, "__module__", None) == module.__name__)]
    wanted = names[0]
    near = next((k for k in own if k.lower() == wanted.lower()), None) or next(iter(difflib.get_close_matches(wanted, own, n=1)), None)
    hint = f"; did you mean '{near}'?" if near else ""
    listing = f" (it exports {', '.join(repr(k) for k in own)} that could be served)" if own else " (it exports no AnyServe app and no class)"
    raise AppLoadError("no_export", f"{path} has no AnyServe app or service class exported as '{wanted}'{hint}{listing}", path, own)


__all__ = ["load_app", "AppLoadError", "split_spec"]
