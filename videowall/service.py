"""Walls, tiles, presets and paired screens: each change committed, then announced on the bus.

Each change writes its audit entry (with its actor) in its own transaction, so the two commit or
roll back together. The bus copy (:data:`~videowall.events.WALL_CHANGED`, keyed by wall name, kept
as state) is what every screen of the wall redraws from, so a change reaches the wall only once it
is durable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import TYPE_CHECKING, Any

from db import cases as case_rows
from db import sessions as session_rows
from db import users as user_rows
from db import walls as wall_rows
from ops import audit, passwords
from ops.core.errors import PoskoError
from ops.http.models import Out
from videowall.events import WALL_CHANGED, WallChanged
from videowall.models import PresetOut, ScreenOut, WallOut
from videowall.tiles import Layout, TileError, fit_tiles, parse_layout, parse_tile

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)

#: How long a paired screen's session lasts; the screen pairs again by itself when it ends.
SCREEN_SESSION = dt.timedelta(days=30)
SOURCE = "videowall"


class WallError(PoskoError):
    """A wall request that cannot be done; ``status`` is the HTTP answer it maps to."""

    status = 400
    code = "invalid_field"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class WallNotFound(WallError):  # noqa: N818 - names the condition, like LookupError
    """No wall of that name."""

    status = 404
    code = "wall_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"there is no wall named {name!r}", "name")


class TileNotFound(WallError):  # noqa: N818
    """The wall has no tile at that index."""

    status = 404
    code = "tile_not_found"

    def __init__(self, name: str, index: int, cells: int) -> None:
        super().__init__(
            f"wall {name!r} has no tile {index}; its tiles are 0 to {cells - 1}", "index"
        )


class PresetNotFound(WallError):  # noqa: N818
    """The wall has no preset of that name."""

    status = 404
    code = "preset_not_found"

    def __init__(self, wall: str, name: str) -> None:
        super().__init__(f"wall {wall!r} has no preset named {name!r}", "preset")


class ScreenNotFound(WallError):  # noqa: N818
    """The wall has no paired screen of that name."""

    status = 404
    code = "screen_not_found"

    def __init__(self, wall: str, screen: str) -> None:
        super().__init__(f"wall {wall!r} has no screen named {screen!r}", "screen")


class ScreenExists(WallError):  # noqa: N818 - names the condition
    """A screen of that name is already paired (remove it first to issue a new token)."""

    status = 409
    code = "screen_exists"

    def __init__(self, wall: str, screen: str) -> None:
        super().__init__(f"wall {wall!r} already has a screen named {screen!r}", "screen")


class CaseNotFound(WallError):  # noqa: N818
    """A case tile names a case that does not exist."""

    status = 404
    code = "case_not_found"

    def __init__(self, case_id: int) -> None:
        super().__init__(f"case_id: there is no case {case_id}", "case_id")


def invalid(exc: TileError) -> WallError:
    """A 400 naming the field of a bad tile or layout."""
    return WallError(exc.message, exc.field)


# -- walls --------------------------------------------------------------------------------------


async def list_walls(pool: Pool) -> list[wall_rows.WallRow]:
    """Every wall."""
    async with pool.acquire() as conn:
        return await wall_rows.list_walls(conn)


async def get_wall(pool: Pool, name: str) -> wall_rows.WallRow:
    """One wall; raises WallNotFound."""
    async with pool.acquire() as conn:
        wall = await wall_rows.get_wall(conn, name)
    if wall is None:
        raise WallNotFound(name)
    return wall


async def put_wall(
    pool: Pool, bus: Bus, name: str, layout: Layout, *, actor: str
) -> tuple[wall_rows.WallRow | None, wall_rows.WallRow]:
    """Create a wall or replace its layout; return it before (None if new) and after."""
    try:
        tiles = parse_layout(layout)
    except TileError as exc:
        raise invalid(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        before = await wall_rows.get_wall(conn, name, for_update=True)
        after = await wall_rows.put_wall(
            conn,
            name=name,
            title=layout.title,
            rows=layout.rows,
            columns=layout.columns,
            tiles=tiles,
        )
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.create" if before is None else "wall.layout",
            target=f"wall:{name}",
            before=None if before is None else _json(WallOut.of(before)),
            after=_json(WallOut.of(after)),
        )
    _announce(bus, after, change="layout", actor=actor)
    audit.announce(bus, entry, source=SOURCE)
    return before, after


async def delete_wall(pool: Pool, bus: Bus, name: str, *, actor: str) -> None:
    """Remove a wall with its presets and its screens' accounts."""
    async with pool.acquire() as conn, conn.transaction():
        wall = await wall_rows.get_wall(conn, name, for_update=True)
        if wall is None:
            raise WallNotFound(name)
        for user_id in await wall_rows.screen_users(conn, name):
            await wall_rows.delete_user(conn, user_id)
        await wall_rows.delete_wall(conn, name)
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.delete",
            target=f"wall:{name}",
            before=_json(WallOut.of(wall)),
        )
    _announce(bus, wall, change="deleted", actor=actor, deleted=True)
    audit.announce(bus, entry, source=SOURCE)


async def push_tile(
    pool: Pool, bus: Bus, name: str, index: int, tile: Any, *, actor: str
) -> wall_rows.WallRow:
    """Put a tile at ``index``; return the wall after."""
    try:
        checked = parse_tile(tile)
    except TileError as exc:
        raise invalid(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        wall = await wall_rows.get_wall(conn, name, for_update=True)
        if wall is None:
            raise WallNotFound(name)
        cells = wall.rows * wall.columns
        if not 0 <= index < cells:
            raise TileNotFound(name, index, cells)
        if checked["kind"] == "case" and await case_rows.get_case(conn, checked["case_id"]) is None:
            raise CaseNotFound(checked["case_id"])
        tiles = fit_tiles(wall.tiles, cells)
        replaced = tiles[index]
        tiles[index] = checked
        after = await wall_rows.set_layout(
            conn, name, rows=wall.rows, columns=wall.columns, tiles=tiles
        )
        if after is None:  # pragma: no cover - the row was locked above
            raise WallNotFound(name)
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.tile",
            target=f"wall:{name}",
            before={"index": index, "tile": replaced},
            after={"index": index, "tile": after.tiles[index]},
        )
    _announce(bus, after, change="tile", actor=actor, index=index)
    audit.announce(bus, entry, source=SOURCE)
    return after


# -- presets ------------------------------------------------------------------------------------


async def list_presets(pool: Pool, name: str) -> list[wall_rows.PresetRow]:
    """A wall's presets; raises WallNotFound."""
    async with pool.acquire() as conn:
        if await wall_rows.get_wall(conn, name) is None:
            raise WallNotFound(name)
        return await wall_rows.list_presets(conn, name)


async def save_preset(
    pool: Pool, bus: Bus, name: str, preset: str, *, actor: str
) -> tuple[wall_rows.PresetRow | None, wall_rows.PresetRow]:
    """Save the wall's current layout under ``preset``; return the preset before and after."""
    async with pool.acquire() as conn, conn.transaction():
        wall = await wall_rows.get_wall(conn, name, for_update=True)
        if wall is None:
            raise WallNotFound(name)
        before = await wall_rows.get_preset(conn, name, preset)
        after = await wall_rows.save_preset(
            conn,
            wall=name,
            name=preset,
            rows=wall.rows,
            columns=wall.columns,
            tiles=fit_tiles(wall.tiles, wall.rows * wall.columns),
            created_by=actor,
        )
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.preset_save",
            target=f"wall:{name}/preset:{preset}",
            before=None if before is None else _json(PresetOut.model_validate(before)),
            after=_json(PresetOut.model_validate(after)),
        )
    audit.announce(bus, entry, source=SOURCE)
    return before, after


async def delete_preset(pool: Pool, bus: Bus, name: str, preset: str, *, actor: str) -> None:
    """Remove a preset."""
    async with pool.acquire() as conn, conn.transaction():
        if await wall_rows.get_wall(conn, name) is None:
            raise WallNotFound(name)
        row = await wall_rows.get_preset(conn, name, preset)
        if row is None:
            raise PresetNotFound(name, preset)
        await wall_rows.delete_preset(conn, name, preset)
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.preset_delete",
            target=f"wall:{name}/preset:{preset}",
            before=_json(PresetOut.model_validate(row)),
        )
    audit.announce(bus, entry, source=SOURCE)


async def recall_preset(
    pool: Pool, bus: Bus, name: str, preset: str, *, actor: str
) -> wall_rows.WallRow:
    """Put a saved layout back on the wall; return the wall after."""
    async with pool.acquire() as conn, conn.transaction():
        before = await wall_rows.get_wall(conn, name, for_update=True)
        if before is None:
            raise WallNotFound(name)
        row = await wall_rows.get_preset(conn, name, preset)
        if row is None:
            raise PresetNotFound(name, preset)
        after = await wall_rows.set_layout(
            conn, name, rows=row.rows, columns=row.columns, tiles=row.tiles
        )
        if after is None:  # pragma: no cover - the row was locked above
            raise WallNotFound(name)
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.preset_recall",
            target=f"wall:{name}/preset:{preset}",
            before=_json(WallOut.of(before)),
            after=_json(WallOut.of(after)),
        )
    _announce(bus, after, change="recall", actor=actor, preset=preset)
    audit.announce(bus, entry, source=SOURCE)
    return after


# -- screens ------------------------------------------------------------------------------------


def screen_username(wall: str, screen: str) -> str:
    """The account name of a paired screen; also its device id in device health."""
    return f"wall:{wall}:{screen}"


async def list_screens(pool: Pool, name: str) -> list[wall_rows.ScreenRow]:
    """The screens paired to a wall; raises WallNotFound."""
    async with pool.acquire() as conn:
        if await wall_rows.get_wall(conn, name) is None:
            raise WallNotFound(name)
        return await wall_rows.list_screens(conn, name)


async def add_screen(
    pool: Pool, bus: Bus, name: str, screen: str, *, actor: str
) -> tuple[wall_rows.ScreenRow, str]:
    """Pair a new screen: a viewer account of its own and a token shown only now."""
    token = secrets.token_urlsafe(32)
    # Nobody knows this password: the account signs in only through its pairing token.
    password_hash = await passwords.hash_password(secrets.token_urlsafe(32))
    async with pool.acquire() as conn, conn.transaction():
        if await wall_rows.get_wall(conn, name, for_update=True) is None:
            raise WallNotFound(name)
        if await wall_rows.get_screen(conn, name, screen) is not None:
            raise ScreenExists(name, screen)
        try:
            user = await user_rows.create_user(
                conn,
                username=screen_username(name, screen),
                password_hash=password_hash,
                role="viewer",
                display_name=f"{name} / {screen}",
            )
        except user_rows.UsernameTaken:
            raise ScreenExists(name, screen) from None
        row = await wall_rows.add_screen(
            conn,
            wall=name,
            screen=screen,
            user_id=user.id,
            token_hash=_hash(token),
            created_by=actor,
        )
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.screen_add",
            target=f"wall:{name}/screen:{screen}",
            after=_json(screen_out(row)),
        )
    audit.announce(bus, entry, source=SOURCE)
    return row, token


async def delete_screen(
    pool: Pool, bus: Bus, name: str, screen: str, *, actor: str
) -> wall_rows.ScreenRow:
    """Unpair a screen: its account and sessions go; return what it was."""
    async with pool.acquire() as conn, conn.transaction():
        if await wall_rows.get_wall(conn, name) is None:
            raise WallNotFound(name)
        row = await wall_rows.get_screen(conn, name, screen)
        if row is None:
            raise ScreenNotFound(name, screen)
        await wall_rows.delete_user(conn, row.user_id)
        entry = await audit.write(
            conn,
            actor=actor,
            action="wall.screen_delete",
            target=f"wall:{name}/screen:{screen}",
            before=_json(screen_out(row)),
        )
    audit.announce(bus, entry, source=SOURCE)
    return row


async def open_screen_session(
    pool: Pool, bus: Bus, name: str, screen: str, *, token: str, session_hash: bytes, remote: str
) -> tuple[wall_rows.ScreenRow, dt.datetime] | None:
    """Check a screen's token and store a session for its account; None for a wrong token."""
    expires_at = dt.datetime.now(dt.UTC) + SCREEN_SESSION
    async with pool.acquire() as conn, conn.transaction():
        row = await wall_rows.use_screen_token(conn, name, screen, _hash(token))
        if row is None:
            return None
        await session_rows.create_session(
            conn, token_hash=session_hash, user_id=row.user_id, expires_at=expires_at
        )
        entry = await audit.write(
            conn,
            actor=screen_username(name, screen),
            action="wall.screen_session",
            target=f"wall:{name}/screen:{screen}",
            detail={"remote": remote},
        )
    audit.announce(bus, entry, source=SOURCE)
    return row, expires_at


# -- helpers ------------------------------------------------------------------------------------


def screen_out(screen: wall_rows.ScreenRow) -> ScreenOut:
    """A paired screen as the API shows it (never its token)."""
    return ScreenOut(
        wall=screen.wall,
        screen=screen.screen,
        device_id=screen_username(screen.wall, screen.screen),
        created_by=screen.created_by,
        created_at=screen.created_at,
        last_used_at=screen.last_used_at,
    )


def _json(model: Out) -> dict[str, Any]:
    """A response model as plain JSON values, for the audit log."""
    return model.model_dump(mode="json")


def _announce(
    bus: Bus,
    wall: wall_rows.WallRow,
    *,
    change: str,
    actor: str,
    index: int | None = None,
    preset: str | None = None,
    deleted: bool = False,
) -> None:
    bus.publish(
        WALL_CHANGED,
        WallChanged(
            name=wall.name,
            title=wall.title,
            rows=wall.rows,
            columns=wall.columns,
            tiles=fit_tiles(wall.tiles, wall.rows * wall.columns),
            version=wall.version,
            change=change,
            actor=actor,
            index=index,
            preset=preset,
            deleted=deleted,
        ),
        source=SOURCE,
        key=wall.name,
    )
    _LOGGER.info("wall %s: %s by %s", wall.name, change, actor)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
