"""Capabilities: flat maps of string keys to string values (``type=chat, model=llama-70b``).

A query matches a capability when every key of the query is present with an equal value (values
compared as strings: ``gpus=2`` matches ``"2"``); the empty query matches everything.

Example::

    cap = Capability(type="chat", model="llama-70b")
    cap.matches({"type": "chat"})   # True
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterator, Mapping, Optional

from .errors import AnyServeError

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_KEYS = 64
MAX_VALUE = 1024


def as_text(value: Any) -> str:
    """A capability value as the router compares it: as JavaScript's String() writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def normalize(query: Optional[Mapping[str, Any]], where: str = "capability") -> Dict[str, str]:
    """String values, sane keys, bounded sizes — the router's own rules (src/protocol/capability.ts)."""
    if query is None:
        return {}
    if not isinstance(query, Mapping):
        raise AnyServeError("INVALID_CAPABILITY", f"{where}: expected an object of key: value, got {type(query).__name__}")
    if len(query) > MAX_KEYS:
        raise AnyServeError("INVALID_CAPABILITY", f"{where}: expected at most {MAX_KEYS} keys, got {len(query)}")
    out: Dict[str, str] = {}
    for key, value in query.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise AnyServeError("INVALID_CAPABILITY", f"{where}: key {str(key)[:64]!r} must be 1-128 characters of [A-Za-z0-9_.-]")
        if not isinstance(value, (str, int, float, bool)):
            raise AnyServeError("INVALID_CAPABILITY", f"{where}.{key}: expected a string, number or boolean, got {type(value).__name__}")
        text = as_text(value)
        if len(text) > MAX_VALUE:
            raise AnyServeError("INVALID_CAPABILITY", f"{where}.{key}: expected at most {MAX_VALUE} characters, got {len(text)}")
        out[key] = text
    return out


def matches(capability: Mapping[str, str], query: Mapping[str, Any]) -> bool:
    """Every key of ``query`` is in ``capability`` with an equal value (as strings)."""
    for key, value in query.items():
        if capability.get(key) != as_text(value):
            return False
    return True


class Capability(Mapping[str, str]):
    """An immutable capability; hashable, readable, usable as a mapping."""

    def __init__(self, attrs: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        merged = dict(attrs or {})
        merged.update(kwargs)
        self._attrs = normalize(merged)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Capability":
        return cls(d)

    def to_dict(self) -> Dict[str, str]:
        """A copy: changing it does not change the capability."""
        return dict(self._attrs)

    def matches(self, query: Optional[Mapping[str, Any]]) -> bool:
        return matches(self._attrs, query or {})

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._attrs.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._attrs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._attrs.items())))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Capability):
            return self._attrs == other._attrs
        if isinstance(other, Mapping):
            return self._attrs == normalize(other)
        return NotImplemented

    def __repr__(self) -> str:
        return "Capability(" + ", ".join(f"{k}={v}" for k, v in self._attrs.items()) + ")"

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self._attrs.items())
