"""Sign-in, sign-out and "who am I", each recorded in the audit log.

A failed login says only that the username or password was wrong, never which. Attempts are
limited per (client address, username) so a password cannot be guessed quickly from one place.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from db import users as user_rows
from ops.users import MAX_PASSWORD_LENGTH, authenticate, normalize_username
from ops.web.auditing import record
from ops.web.errors import ApiError, read_json
from ops.web.keys import HUB_KEY
from ops.web.live import LIVE_CLIENTS_KEY
from ops.web.ratelimit import RateLimiter
from ops.web.sessions import (
    clear_session_cookie,
    close_session,
    current_user,
    hash_token,
    open_session,
    session_token,
    set_session_cookie,
)

_LOGGER = logging.getLogger(__name__)

LOGIN_LIMITER_KEY = web.AppKey("login_limiter", RateLimiter)
ANONYMOUS = "anonymous"

routes = web.RouteTableDef()


class LoginRequest(BaseModel):
    """The body of ``POST /api/v1/auth/login``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


@routes.post("/api/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    """Check the credentials and open a session; 401 ``invalid_credentials`` otherwise."""
    hub = request.app[HUB_KEY]
    body = await read_json(request, LoginRequest)
    username = normalize_username(body.username)
    remote = request.remote or "unknown"
    verdict = request.app[LOGIN_LIMITER_KEY].attempt((remote, username))
    if not verdict.allowed:
        if verdict.first_refusal:
            _LOGGER.warning("login attempts for %s from %s throttled", username, remote)
            await record(
                request,
                actor=ANONYMOUS,
                action="auth.login_throttled",
                target=f"user:{username}",
                detail={"remote": remote},
            )
        raise ApiError(
            429,
            "too_many_requests",
            "too many login attempts; wait and try again",
            headers={"Retry-After": str(max(1, round(verdict.retry_after)))},
        )

    user = await authenticate(hub.pool, username, body.password)
    if user is None:
        _LOGGER.info("failed login for %s from %s", username, remote)
        await record(
            request,
            actor=ANONYMOUS,
            action="auth.login_failed",
            target=f"user:{username}",
            detail={"remote": remote},
        )
        raise ApiError(401, "invalid_credentials", "wrong username or password")

    previous = session_token(request)
    token, expires_at = await open_session(
        request,
        user.id,
        user.username,
        replaces=None if previous is None else hash_token(previous),
    )
    _LOGGER.info("%s signed in from %s", user.username, remote)
    response = web.json_response(
        {
            "user": user_json(user.id, user.username, user.role, user.display_name),
            "expires_at": expires_at.isoformat(),
        }
    )
    set_session_cookie(response, request, token, expires_at)
    return response


@routes.post("/api/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """End the caller's session and drop its cookie."""
    user = current_user(request)
    await close_session(request, user)
    await request.app[LIVE_CLIENTS_KEY].close_session(user.token_hash, "signed out")
    response = web.Response(status=204)
    clear_session_cookie(response, request)
    return response


@routes.get("/api/v1/auth/me", allow_head=False)
async def me(request: web.Request) -> web.Response:
    """The signed-in user and when the session ends."""
    user = current_user(request)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        row = await user_rows.get_user(conn, user.user_id)
    display_name = row.display_name if row is not None else None
    return web.json_response(
        {
            "user": user_json(user.user_id, user.username, user.role, display_name),
            "expires_at": user.expires_at.isoformat(),
        }
    )


def user_json(user_id: int, username: str, role: str, display_name: str | None) -> dict[str, Any]:
    """A user as the API shows it (never the password hash)."""
    return {"id": user_id, "username": username, "role": str(role), "display_name": display_name}


def create_login_limiter(attempts_per_minute: int) -> RateLimiter:
    """The per-app login limiter."""
    return RateLimiter(attempts_per_minute, 60.0)
