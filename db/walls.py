"""Video walls: layouts (grid and tiles), saved presets, and the screens paired to a wall.

``tiles`` is a JSON array with one object per cell, row by row; the service checks its shape
before anything reaches these functions. Every change bumps ``version`` so a screen can tell
whether the layout it shows is current.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from db.pool import Connection

_WALL_COLUMNS = "name, title, rows, columns, tiles, version, created_at, updated_at"
_PRESET_COLUMNS = "wall, name, rows, columns, tiles, created_by, created_at"
_SCREEN_COLUMNS = "wall, screen, user_id, created_by, created_at, last_used_at"


@dataclass(frozen=True, slots=True)
class WallRow:
    """One row of ``walls``."""

    name: str
    title: str
    rows: int
    columns: int
    tiles: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PresetRow:
    """One saved layout of a wall."""

    wall: str
    name: str
    rows: int
    columns: int
    tiles: list[dict[str, Any]]
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScreenRow:
    """A screen paired to a wall, signing in as its own viewer account."""

    wall: str
    screen: str
    user_id: int
    created_by: str
    created_at: datetime
    last_used_at: datetime | None


# -- walls --------------------------------------------------------------------------------------


async def list_walls(conn: Connection) -> list[WallRow]:
    """Every wall, by name."""
    rows = await conn.fetch(f"SELECT {_WALL_COLUMNS} FROM walls ORDER BY name")  # noqa: S608
    return [_wall(row) for row in rows]


async def get_wall(conn: Connection, name: str, *, for_update: bool = False) -> WallRow | None:
    """One wall, optionally locked for the rest of the transaction."""
    lock = " FOR NO KEY UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_WALL_COLUMNS} FROM walls WHERE name = $1{lock}",  # noqa: S608
        name,
    )
    return None if row is None else _wall(row)


async def put_wall(
    conn: Connection,
    *,
    name: str,
    title: str,
    rows: int,
    columns: int,
    tiles: list[dict[str, Any]],
) -> WallRow:
    """Create the wall or replace its whole layout."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO walls (name, title, rows, columns, tiles)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (name) DO UPDATE
        SET title = EXCLUDED.title, rows = EXCLUDED.rows, columns = EXCLUDED.columns,
            tiles = EXCLUDED.tiles, version = walls.version + 1, updated_at = now()
        RETURNING {_WALL_COLUMNS}
        """,  # noqa: S608
        name,
        title,
        rows,
        columns,
        tiles,
    )
    return _wall(_one(row))


async def set_layout(
    conn: Connection, name: str, *, rows: int, columns: int, tiles: list[dict[str, Any]]
) -> WallRow | None:
    """Replace the grid and tiles of an existing wall (a preset recall or a tile push)."""
    row = await conn.fetchrow(
        f"""
        UPDATE walls
        SET rows = $2, columns = $3, tiles = $4, version = version + 1, updated_at = now()
        WHERE name = $1
        RETURNING {_WALL_COLUMNS}
        """,  # noqa: S608
        name,
        rows,
        columns,
        tiles,
    )
    return None if row is None else _wall(row)


async def delete_wall(conn: Connection, name: str) -> bool:
    """Remove a wall with its presets and screens; False if there was none."""
    status: str = await conn.execute("DELETE FROM walls WHERE name = $1", name)
    return status != "DELETE 0"


# -- presets ------------------------------------------------------------------------------------


async def list_presets(conn: Connection, wall: str) -> list[PresetRow]:
    """A wall's presets, by name."""
    rows = await conn.fetch(
        f"SELECT {_PRESET_COLUMNS} FROM wall_presets WHERE wall = $1 ORDER BY name",  # noqa: S608
        wall,
    )
    return [_preset(row) for row in rows]


async def get_preset(conn: Connection, wall: str, name: str) -> PresetRow | None:
    """One preset of a wall."""
    row = await conn.fetchrow(
        f"SELECT {_PRESET_COLUMNS} FROM wall_presets WHERE wall = $1 AND name = $2",  # noqa: S608
        wall,
        name,
    )
    return None if row is None else _preset(row)


async def save_preset(
    conn: Connection,
    *,
    wall: str,
    name: str,
    rows: int,
    columns: int,
    tiles: list[dict[str, Any]],
    created_by: str,
) -> PresetRow:
    """Store a layout under a name, replacing a preset of that name."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO wall_presets (wall, name, rows, columns, tiles, created_by)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (wall, name) DO UPDATE
        SET rows = EXCLUDED.rows, columns = EXCLUDED.columns, tiles = EXCLUDED.tiles,
            created_by = EXCLUDED.created_by, created_at = now()
        RETURNING {_PRESET_COLUMNS}
        """,  # noqa: S608
        wall,
        name,
        rows,
        columns,
        tiles,
        created_by,
    )
    return _preset(_one(row))


async def delete_preset(conn: Connection, wall: str, name: str) -> bool:
    """Remove a preset; False if there was none."""
    status: str = await conn.execute(
        "DELETE FROM wall_presets WHERE wall = $1 AND name = $2", wall, name
    )
    return status != "DELETE 0"


# -- screens ------------------------------------------------------------------------------------


async def list_screens(conn: Connection, wall: str) -> list[ScreenRow]:
    """The screens paired to a wall."""
    rows = await conn.fetch(
        f"SELECT {_SCREEN_COLUMNS} FROM wall_screens WHERE wall = $1 ORDER BY screen",  # noqa: S608
        wall,
    )
    return [_screen(row) for row in rows]


async def get_screen(conn: Connection, wall: str, screen: str) -> ScreenRow | None:
    """One screen of a wall."""
    row = await conn.fetchrow(
        f"SELECT {_SCREEN_COLUMNS} FROM wall_screens WHERE wall = $1 AND screen = $2",  # noqa: S608
        wall,
        screen,
    )
    return None if row is None else _screen(row)


async def add_screen(
    conn: Connection,
    *,
    wall: str,
    screen: str,
    user_id: int,
    token_hash: bytes,
    created_by: str,
) -> ScreenRow:
    """Pair a screen: its account and the hash of its token."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO wall_screens (wall, screen, user_id, token_hash, created_by)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING {_SCREEN_COLUMNS}
        """,  # noqa: S608
        wall,
        screen,
        user_id,
        token_hash,
        created_by,
    )
    return _screen(_one(row))


async def use_screen_token(
    conn: Connection, wall: str, screen: str, token_hash: bytes
) -> ScreenRow | None:
    """The screen this token opens (marking it used now), or None for a wrong token."""
    row = await conn.fetchrow(
        f"""
        UPDATE wall_screens SET last_used_at = now()
        WHERE wall = $1 AND screen = $2 AND token_hash = $3
        RETURNING {_SCREEN_COLUMNS}
        """,  # noqa: S608
        wall,
        screen,
        token_hash,
    )
    return None if row is None else _screen(row)


async def screen_users(conn: Connection, wall: str) -> list[int]:
    """The accounts of a wall's screens (to remove them with the wall)."""
    rows = await conn.fetch("SELECT user_id FROM wall_screens WHERE wall = $1", wall)
    return [int(row["user_id"]) for row in rows]


async def delete_user(conn: Connection, user_id: int) -> None:
    """Remove a screen's account; its sessions and pairing go with it (cascade)."""
    await conn.execute("DELETE FROM users WHERE id = $1", user_id)


# -- rows ---------------------------------------------------------------------------------------


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def _wall(row: asyncpg.Record) -> WallRow:
    return WallRow(
        name=row["name"],
        title=row["title"],
        rows=row["rows"],
        columns=row["columns"],
        tiles=list(row["tiles"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _preset(row: asyncpg.Record) -> PresetRow:
    return PresetRow(
        wall=row["wall"],
        name=row["name"],
        rows=row["rows"],
        columns=row["columns"],
        tiles=list(row["tiles"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def _screen(row: asyncpg.Record) -> ScreenRow:
    return ScreenRow(
        wall=row["wall"],
        screen=row["screen"],
        user_id=row["user_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )
