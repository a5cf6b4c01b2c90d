"""``python -m anyserve.describe FILE[:export] [--service NAME]``: loads the app as a worker would
and prints one JSON line — ``{"ok": true, "python": "3.11.7", "handlers": [...]}`` with each
handler's capability, stream/batch/lazy flags, unit and declared example/inputs/outputs, or
``{"ok": false, "kind": …, "message": …}``. The replica runs it at start to learn what a Python
app serves (it registers and routes those capabilities); ``anyserve up`` runs it to check apps
before starting anything.
"""
from __future__ import annotations

import json
import sys
import traceback


def main(argv: list) -> int:
    out = sys.stdout
    # What the app prints while it loads must not be taken for the answer.
    sys.stdout = sys.stderr
    if sys.version_info < (3, 9):
        answer = {"ok": False, "kind": "import_failed", "message": f"Python {sys.version.split()[0]} is too old: anyserve needs Python 3.9 or newer"}
    elif not argv:
        answer = {"ok": False, "kind": "not_found", "message": "usage: python -m anyserve.describe FILE[:export] [--service NAME]"}
    else:
        service = argv[argv.index("--service") + 1] if "--service" in argv[:-1] else None
        try:
            from .loader import AppLoadError, load_app

            app = load_app(argv[0], service)
            answer = {"ok": True, "python": sys.version.split()[0], "handlers": app.describe()}
            if getattr(app, "service", None):
                answer["service"] = app.service
        except AppLoadError as err:
            if err.__cause__ is not None:
                traceback.print_exception(type(err.__cause__), err.__cause__, err.__cause__.__traceback__)
            answer = {"ok": False, "kind": err.kind, "message": str(err)}
        except Exception as err:  # noqa: BLE001 - reported to the replica, not raised
            traceback.print_exc()
            answer = {"ok": False, "kind": "import_failed", "message": f"{type(err).__name__}: {err}"}
    out.write(json.dumps(answer, default=str) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
