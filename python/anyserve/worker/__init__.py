"""The Python worker (``python -m anyserve.worker``): see ``__main__.py``, ``runtime.py`` and
``protocol.py``. The seed's Phase 5 ``Worker`` class lives in ``anyserve.app`` and is re-exported here."""
from ..app import Worker

__all__ = ["Worker"]
