"""The wall's bus topics: a layout changed, and a wall screen came, stayed or went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ops.core.events import Topic


@dataclass(frozen=True, slots=True)
class WallChanged:
    """A wall's layout after a committed change; every screen of that wall redraws from it.

    ``change`` says what happened (``layout``, ``tile``, ``recall``, ``deleted``); ``index`` is
    the tile pushed and ``preset`` the preset recalled, when there is one.
    """

    name: str
    title: str
    rows: int
    columns: int
    tiles: list[dict[str, Any]]
    version: int
    change: str
    actor: str
    index: int | None = None
    preset: str | None = None
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


#: Keyed by wall name and kept as state, so a screen that reconnects gets its layout at once.
WALL_CHANGED: Topic[WallChanged] = Topic("wall.changed", state=True)
