"""People who sign in: adding them (audited) and checking their passwords.

Usernames are case-insensitive (``Budi`` and ``budi`` are one user) and kept in lower case.
Authentication takes about the same time whether or not the user exists, so response timing does
not reveal which usernames are real.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from db import audit
from db import users as user_rows
from db.users import UserRow
from ops import passwords
from ops.core.errors import PoskoError

if TYPE_CHECKING:
    from db.pool import Pool

_LOGGER = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
#: Longer passwords only make hashing slower; nobody types more.
MAX_PASSWORD_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "USERNAME_PATTERN",
    "InvalidUser",
    "Role",
    "UserRow",
    "UsernameTaken",
    "add_user",
    "authenticate",
    "normalize_username",
    "parse_role",
    "role_names",
]


class Role(enum.StrEnum):
    """What a person may do in the room."""

    OPERATOR = "operator"
    """Takes reports, dispatches units, pushes cameras to the wall."""
    SUPERVISOR = "supervisor"
    """Everything an operator does, plus handovers, user and audit views."""
    TECHNICIAN = "technician"
    """Device health, alarms and adapters."""
    VIEWER = "viewer"
    """Reads; changes nothing."""


class InvalidUser(PoskoError, ValueError):  # noqa: N818 - names what was wrong, like ValueError
    """A user could not be added as asked; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UsernameTaken(PoskoError, user_rows.UsernameTaken):  # noqa: N818 - as in db.users
    """Another user has this username already (compared without case)."""


def parse_role(value: str) -> Role:
    """The role named ``value`` (any case).

    Raises:
        InvalidUser: no such role; the message lists the valid ones.
    """
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidUser("role", f"unknown role {value!r}; use one of {role_names()}") from None


def role_names(roles: Iterable[Role] = Role) -> str:
    """Comma-separated role names, for messages."""
    return ", ".join(role.value for role in roles)


def normalize_username(username: str) -> str:
    """The stored form of a username: trimmed and lower case."""
    return username.strip().lower()


def validate_new_user(
    *, username: str, password: str, role: str | Role, display_name: str | None = None
) -> tuple[str, Role, str | None]:
    """Check a new account before any work is done; return (username, role, display name).

    Raises:
        InvalidUser: bad username, role, password or display name (``field`` says which).
    """
    name = normalize_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidUser(
            "username",
            "username must be 2-32 characters: a letter, then letters, digits, '.', '_' or '-'",
        )
    chosen = role if isinstance(role, Role) else parse_role(role)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser("password", f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUser("password", f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    shown = display_name.strip() if display_name is not None else None
    if shown is not None and not 1 <= len(shown) <= 100:  # noqa: PLR2004 - a name, not a novel
        raise InvalidUser("display_name", "display name must be 1-100 characters")
    return name, chosen, shown


async def add_user(
    pool: Pool,
    *,
    username: str,
    password: str,
    role: str | Role,
    actor: str,
    display_name: str | None = None,
) -> UserRow:
    """Create a user and audit it in one transaction.

    Raises:
        InvalidUser: bad username, role, password or display name (``field`` says which).
        UsernameTaken: a user with that name (in any case) exists already.
    """
    name, chosen, shown = validate_new_user(
        username=username, password=password, role=role, display_name=display_name
    )
    password_hash = await passwords.hash_password(password)
    async with pool.acquire() as conn, conn.transaction():
        try:
            user = await user_rows.create_user(
                conn,
                username=name,
                password_hash=password_hash,
                role=chosen.value,
                display_name=shown,
            )
        except user_rows.UsernameTaken as exc:
            raise UsernameTaken(exc.username) from exc
        await audit.append(
            conn,
            actor=actor,
            action="user.add",
            target=f"user:{user.username}",
            after={"username": user.username, "role": user.role, "display_name": shown},
        )
    _LOGGER.info("user %s added with role %s by %s", user.username, user.role, actor)
    return user


async def authenticate(pool: Pool, username: str, password: str) -> UserRow | None:
    """The active user whose password this is, or None; never says which part was wrong.

    An unknown user still costs one hash verification, so timing does not reveal who exists.
    """
    name = normalize_username(username)
    if not name or len(password) > MAX_PASSWORD_LENGTH:
        await passwords.verify_password(await passwords.dummy_hash(), password[:1])
        return None
    async with pool.acquire() as conn:
        user = await user_rows.get_user_by_username(conn, name)
    if user is None:
        await passwords.verify_password(await passwords.dummy_hash(), password)
        return None
    if not await passwords.verify_password(user.password_hash, password):
        return None
    if not user.active:
        return None
    if passwords.needs_rehash(user.password_hash):
        # The hashing parameters were raised since this hash was made: upgrade it now, while
        # the password is at hand.
        async with pool.acquire() as conn:
            await user_rows.set_password_hash(
                conn, user.id, await passwords.hash_password(password)
            )
        _LOGGER.info("password hash of %s upgraded", user.username)
    return user
