"""Users: the people who sign in, with their role. Usernames are unique regardless of case."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import asyncpg

if TYPE_CHECKING:
    from datetime import datetime

    from db.pool import Connection

Role = Literal["operator", "supervisor", "technician", "viewer"]

_COLUMNS = "id, username, display_name, role, active, created_at, updated_at, password_hash"


class UsernameTaken(ValueError):  # noqa: N818 - reads as the condition it reports
    """Another user already has this username (compared without case)."""

    def __init__(self, username: str) -> None:
        super().__init__(f"username {username!r} is already taken")
        self.username = username


@dataclass(frozen=True, slots=True)
class UserRow:
    """One row of ``users``."""

    id: int
    username: str
    display_name: str | None
    role: Role
    active: bool
    created_at: datetime
    updated_at: datetime
    password_hash: str = field(repr=False)


async def create_user(
    conn: Connection,
    *,
    username: str,
    password_hash: str,
    role: Role,
    display_name: str | None = None,
) -> UserRow:
    """Insert a user; raise `UsernameTaken` if the name exists in any case."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO users (username, display_name, password_hash, role)
            VALUES ($1, $2, $3, $4)
            RETURNING {_COLUMNS}
            """,  # noqa: S608 - a constant column list
            username,
            display_name,
            password_hash,
            role,
        )
    except asyncpg.UniqueViolationError as err:
        if err.constraint_name == "users_username_lower_key":
            raise UsernameTaken(username) from err
        raise
    if row is None:  # INSERT … RETURNING always returns its row
        raise RuntimeError("INSERT INTO users returned no row")
    return _user(row)


async def get_user(conn: Connection, user_id: int) -> UserRow | None:
    """The user with this id, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)  # noqa: S608
    return None if row is None else _user(row)


async def get_user_by_username(conn: Connection, username: str) -> UserRow | None:
    """The user with this username in any case, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE lower(username) = lower($1)",  # noqa: S608
        username,
    )
    return None if row is None else _user(row)


async def list_users(conn: Connection) -> list[UserRow]:
    """Every user, by username."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY lower(username)")  # noqa: S608
    return [_user(row) for row in rows]


async def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> bool:
    """Replace a user's password hash; False if there is no such user."""
    status = await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )
    return status == "UPDATE 1"


def _user(row: asyncpg.Record) -> UserRow:
    return UserRow(**dict(row.items()))
