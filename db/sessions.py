"""Sign-in sessions, keyed by the SHA-256 of the cookie token (the token itself is never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import asyncpg

    from db.pool import Connection
    from db.users import Role


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A live session with the user it belongs to."""

    token_hash: bytes
    user_id: int
    username: str
    role: Role
    active: bool  # the user's; a deactivated user's sessions are still returned
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


async def create_session(
    conn: Connection, *, token_hash: bytes, user_id: int, expires_at: datetime
) -> None:
    """Record a new session."""
    await conn.execute(
        "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        user_id,
        expires_at,
    )


async def get_session(conn: Connection, token_hash: bytes) -> SessionRow | None:
    """The unexpired session with this token hash, or None."""
    row = await conn.fetchrow(
        """
        SELECT s.token_hash, s.user_id, u.username, u.role, u.active,
               s.created_at, s.expires_at, s.last_seen_at
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = $1 AND s.expires_at > now()
        """,
        token_hash,
    )
    return None if row is None else _session(row)


async def touch_session(
    conn: Connection, token_hash: bytes, *, expires_at: datetime | None = None
) -> bool:
    """Mark an unexpired session as seen now, optionally moving its expiry; False if none."""
    status = await conn.execute(
        """
        UPDATE sessions SET last_seen_at = now(), expires_at = coalesce($2, expires_at)
        WHERE token_hash = $1 AND expires_at > now()
        """,
        token_hash,
        expires_at,
    )
    return status == "UPDATE 1"


async def delete_session(conn: Connection, token_hash: bytes) -> bool:
    """End a session (sign-out); False if there was none."""
    status = await conn.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)
    return status == "DELETE 1"


async def purge_expired_sessions(conn: Connection) -> int:
    """Delete expired sessions; return how many."""
    status = await conn.execute("DELETE FROM sessions WHERE expires_at <= now()")
    return int(status.rpartition(" ")[2])


def _session(row: asyncpg.Record) -> SessionRow:
    return SessionRow(**dict(row.items()))
