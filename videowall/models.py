"""What the wall routes answer: one response model per shape."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field

from db.walls import WallRow
from ops.http.models import Out, Time
from videowall.tiles import fit_tiles


class WallOut(Out):
    """A wall's layout; tiles fill the grid row by row."""

    name: str
    title: str
    rows: int = Field(ge=1)
    columns: int = Field(ge=1)
    tiles: list[dict[str, Any]] = Field(
        description="One per cell: kind empty, camera, map, case, queue, alerts, units, devices, "
        "kpis or follow, with that kind's fields (see the WallLayout request)."
    )
    version: int
    updated_at: Time

    @classmethod
    def of(cls, wall: WallRow) -> Self:
        """A stored wall, its tiles fitted to its grid."""
        return cls(
            name=wall.name,
            title=wall.title,
            rows=wall.rows,
            columns=wall.columns,
            tiles=fit_tiles(wall.tiles, wall.rows * wall.columns),
            version=wall.version,
            updated_at=wall.updated_at,
        )


class Walls(Out):
    """Every wall with its layout."""

    walls: list[WallOut]


class PresetOut(Out):
    """A saved layout of a wall."""

    wall: str
    name: str
    rows: int
    columns: int
    tiles: list[dict[str, Any]]
    created_by: str
    created_at: Time


class Presets(Out):
    """A wall's saved layouts."""

    presets: list[PresetOut]


class ScreenOut(Out):
    """A screen paired to a wall; it reports as the device ``device_id``."""

    wall: str
    screen: str
    device_id: str
    created_by: str
    created_at: Time
    last_used_at: Time | None


class Screens(Out):
    """The screens paired to a wall."""

    screens: list[ScreenOut]


class PairedScreen(ScreenOut):
    """A newly paired screen: its token (shown once) and the address to open on it."""

    token: str
    pair_path: str


class MapSettings(Out):
    """The map's centre, outlines and optional online tiles."""

    center: list[float] = Field(min_length=2, max_length=2)
    zoom: int
    outline: str
    provinces: str
    tile_url: str | None
    tile_attribution: str


class ConsoleSettings(Out):
    """What the console and the wall need to draw."""

    hub_id: str
    panels: list[str]
    timezone: str
    zone_label: str
    map: MapSettings
