"""What a wall tile may show, and the checks that keep a bad tile off every screen of a wall.

A tile is a JSON object with a ``kind``; the other fields depend on it. Parsing a tile names the
offending field (``lat``, or ``tiles.3.lat`` inside a layout), so an operator's mistake is
answered with a 400 that says what to fix, never with a broken wall.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_ROWS = 8
MAX_COLUMNS = 8
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAP_LAYERS = ("cases", "units", "alerts", "centers", "cameras", "devices")

Title = Annotated[str, Field(max_length=80)]


class TileError(ValueError):
    """A tile or layout that cannot be shown; ``field`` names the part that is wrong."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Tile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Title = ""


class EmptyTile(_Tile):
    """Nothing (a dark cell)."""

    kind: Literal["empty"] = "empty"


class CameraTile(_Tile):
    """One camera: a registered device, or directly a snapshot or MJPEG stream URL of this hub."""

    kind: Literal["camera"] = "camera"
    device_id: str | None = Field(default=None, min_length=1, max_length=200)
    snapshot_url: str | None = Field(default=None, max_length=500)
    stream_url: str | None = Field(default=None, max_length=500)
    refresh_seconds: float = Field(default=2.0, ge=0.5, le=60)

    @field_validator("snapshot_url", "stream_url")
    @classmethod
    def _same_hub(cls, value: str | None) -> str | None:
        # The wall's pages load images from their own hub only (Content-Security-Policy).
        if value is not None and not (value.startswith("/") and not value.startswith("//")):
            raise ValueError("must be a path on this hub, starting with /")
        return value


class MapTile(_Tile):
    """A map view: centre, zoom and the layers drawn."""

    kind: Literal["map"] = "map"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    zoom: int = Field(default=10, ge=3, le=18)
    layers: tuple[Literal["cases", "units", "alerts", "centers", "cameras", "devices"], ...] = (
        "cases",
        "units",
        "alerts",
    )


class CaseTile(_Tile):
    """One case, with its details kept current."""

    kind: Literal["case"] = "case"
    case_id: int = Field(ge=1)


class QueueTile(_Tile):
    """The open case queue, most urgent first."""

    kind: Literal["queue"] = "queue"


class AlertsTile(_Tile):
    """Active alerts (earthquakes, weather warnings)."""

    kind: Literal["alerts"] = "alerts"


class UnitsTile(_Tile):
    """The unit board: each unit's duty state and how fresh its position is."""

    kind: Literal["units"] = "units"


class DevicesTile(_Tile):
    """Device health: what is offline or degraded first."""

    kind: Literal["devices"] = "devices"


class KpisTile(_Tile):
    """Open cases by priority, SLA breaches, units available, devices offline."""

    kind: Literal["kpis"] = "kpis"


class FollowTile(_Tile):
    """The cameras nearest the newest high-priority case, swapped in as cases arrive."""

    kind: Literal["follow"] = "follow"
    cameras: int = Field(default=1, ge=1, le=4)


TILE_KINDS: dict[str, type[_Tile]] = {
    "empty": EmptyTile,
    "camera": CameraTile,
    "map": MapTile,
    "case": CaseTile,
    "queue": QueueTile,
    "alerts": AlertsTile,
    "units": UnitsTile,
    "devices": DevicesTile,
    "kpis": KpisTile,
    "follow": FollowTile,
}


def parse_tile(data: Any, prefix: str = "") -> dict[str, Any]:
    """Check one tile; return it in full (defaults filled in) as a JSON object.

    Raises:
        TileError: naming the field (with ``prefix``) that is missing, unknown or wrong.
    """
    if not isinstance(data, dict):
        raise TileError(prefix.rstrip(".") or None, "a tile must be a JSON object")
    kind = data.get("kind")
    if kind not in TILE_KINDS:
        raise TileError(f"{prefix}kind", f"{prefix}kind must be one of: {', '.join(TILE_KINDS)}")
    if kind == "camera" and not any(
        data.get(key) is not None for key in ("device_id", "snapshot_url", "stream_url")
    ):
        raise TileError(
            f"{prefix}device_id",
            f"a camera tile needs {prefix}device_id, snapshot_url or stream_url",
        )
    try:
        tile = TILE_KINDS[kind].model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            message = f"{prefix}{field} is required"
        elif first["type"] == "extra_forbidden":
            message = f"{prefix}{field} is not a field of a {kind} tile"
        else:
            message = f"{prefix}{field}: {first['msg']}"
        raise TileError(f"{prefix}{field}", message) from None
    return tile.model_dump(mode="json")


class Layout(BaseModel):
    """A wall's grid and tiles, as sent to ``PUT /api/v1/walls/{name}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Title = ""
    rows: int = Field(ge=1, le=MAX_ROWS)
    columns: int = Field(ge=1, le=MAX_COLUMNS)
    tiles: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ROWS * MAX_COLUMNS)


def parse_layout(layout: Layout) -> list[dict[str, Any]]:
    """Check every tile of a layout; missing cells at the end become empty tiles.

    Raises:
        TileError: more tiles than cells, or a bad tile (``tiles.N.field``).
    """
    cells = layout.rows * layout.columns
    if len(layout.tiles) > cells:
        raise TileError(
            "tiles", f"tiles has {len(layout.tiles)} entries for {cells} cells (rows x columns)"
        )
    tiles = [parse_tile(tile, f"tiles.{index}.") for index, tile in enumerate(layout.tiles)]
    tiles.extend(EmptyTile().model_dump(mode="json") for _ in range(cells - len(tiles)))
    return tiles


def fit_tiles(tiles: list[dict[str, Any]], cells: int) -> list[dict[str, Any]]:
    """``tiles`` cut or padded with empty tiles to exactly ``cells``."""
    empty = EmptyTile().model_dump(mode="json")
    return [*tiles[:cells], *([empty] * max(0, cells - len(tiles)))]
