"""Browser sessions: a random cookie token of which only the SHA-256 is stored.

A leaked ``sessions`` table therefore opens no session. A session lasts ``web.session_hours`` from
login (about one shift) and is not extended by use, so a forgotten console logs itself out. Signing
in and out is audited in the transaction that opens or ends the session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from db import sessions as session_rows
from ops import audit
from ops.http.audit import SOURCE
from ops.http.keys import HUB_KEY
from ops.users import Role

if TYPE_CHECKING:
    from db.pool import Connection

COOKIE_NAME = "posko_session"
#: ``last_seen_at`` is refreshed at most this often, so reads do not each cost a write.
TOUCH_EVERY = dt.timedelta(minutes=1)
_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # what secrets.token_urlsafe(32) gives


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Who is behind a request, as resolved from its session cookie."""

    user_id: int
    username: str
    role: Role
    token_hash: bytes
    expires_at: dt.datetime


USER_KEY = web.RequestKey("user", SessionUser)


def new_token() -> str:
    """A fresh cookie token with 256 bits of randomness."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """What is stored for a token: its SHA-256 digest."""
    return hashlib.sha256(token.encode("ascii")).digest()


async def open_session(
    request: web.Request, user_id: int, username: str, *, replaces: bytes | None = None
) -> tuple[str, dt.datetime]:
    """Store a new session for a user who signed in; return its token and when it expires.

    The session it ``replaces`` (the browser's previous one) ends in the same transaction.
    Expired sessions are swept here too: logins are rare enough, and no timer is needed.
    """
    hub = request.app[HUB_KEY]
    token = new_token()
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hub.config.web.session_hours)
    async with hub.pool.acquire() as conn, conn.transaction():
        if replaces is not None:
            await session_rows.delete_session(conn, replaces)
        await session_rows.create_session(
            conn, token_hash=hash_token(token), user_id=user_id, expires_at=expires_at
        )
        await session_rows.purge_expired_sessions(conn)
        entry = await _audit(conn, request, username, "auth.login")
    audit.announce(hub.bus, entry, source=SOURCE)
    return token, expires_at


async def close_session(request: web.Request, user: SessionUser) -> None:
    """End a user's session on sign-out, so its cookie opens nothing any more."""
    hub = request.app[HUB_KEY]
    async with hub.pool.acquire() as conn, conn.transaction():
        await session_rows.delete_session(conn, user.token_hash)
        entry = await _audit(conn, request, user.username, "auth.logout")
    audit.announce(hub.bus, entry, source=SOURCE)


async def resolve_session(request: web.Request) -> SessionUser | None:
    """The user behind the request's session cookie, or None (no, unknown or expired session)."""
    token = session_token(request)
    if token is None:
        return None
    token_hash = hash_token(token)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        row = await session_rows.get_session(conn, token_hash)
        if row is None or not row.active:
            return None
        if dt.datetime.now(dt.UTC) - row.last_seen_at >= TOUCH_EVERY:
            await session_rows.touch_session(conn, token_hash)
    return SessionUser(
        user_id=row.user_id,
        username=row.username,
        role=Role(row.role),
        token_hash=token_hash,
        expires_at=row.expires_at,
    )


def session_token(request: web.Request) -> str | None:
    """The raw session token the request carries, if it looks like one."""
    token = request.cookies.get(COOKIE_NAME)
    return token if token is not None and _TOKEN_PATTERN.fullmatch(token) else None


def set_session_cookie(
    response: web.StreamResponse, request: web.Request, token: str, expires_at: dt.datetime
) -> None:
    """Attach the session cookie: HttpOnly, SameSite=Strict, Secure when configured."""
    max_age = max(0, int((expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[HUB_KEY].config.web.secure_cookies,
    )


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    """Tell the browser to drop the session cookie."""
    response.del_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.app[HUB_KEY].config.web.secure_cookies,
    )


def current_user(request: web.Request) -> SessionUser:
    """The signed-in user of a request that passed the access check."""
    try:
        return request[USER_KEY]
    except KeyError:
        raise RuntimeError("current_user() on a route that is public or was not checked") from None


async def _audit(conn: Connection, request: web.Request, username: str, action: str) -> audit.Entry:
    return await audit.write(
        conn,
        actor=username,
        action=action,
        target=f"user:{username}",
        detail={"remote": request.remote or "unknown"},
    )
