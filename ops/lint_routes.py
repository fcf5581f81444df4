"""``make lint``: fail on any route that was not made from a declaration.

Builds the real app (over a hub that is never started; nothing connects) and names every aiohttp
route without a declaration; also names any source line that adds a route behind the
declarations' back.
Run as ``python -m ops.lint_routes``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ops.app import Hub
from ops.core.config import load_config
from ops.http.routes import undeclared
from ops.web.app import create_app

#: Ways to add a route that bypass :class:`ops.http.routes.Api`.
_BYPASS = re.compile(r"\b(RouteTableDef|add_routes|add_(route|get|post|put|patch|delete))\(")
_PACKAGES = ("ops", "videowall", "devices", "radio")
_ALLOWED = {Path("ops/http/routes.py")}


def problems(root: Path) -> list[str]:
    """What is wrong, one line each; empty when every route is declared."""
    found: list[str] = []
    try:
        app = create_app(Hub(load_config(environ={})))
    except RuntimeError as exc:  # create_app refuses an undeclared route itself
        found.append(str(exc))
    else:
        found.extend(f"undeclared route {method} {path}" for method, path in undeclared(app))
    for package in _PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            if relative in _ALLOWED:
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if _BYPASS.search(line):
                    found.append(f"{relative}:{number}: a route added without a declaration")
    return found


def main() -> int:
    """Print the problems; exit 1 when there are any."""
    found = problems(Path.cwd())
    for line in found:
        print(line, file=sys.stderr)  # noqa: T201 - a command-line checker
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
