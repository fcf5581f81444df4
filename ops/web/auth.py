"""Sign-in, sign-out and "who am I", each recorded in the audit log.

A failed login says only that the username or password was wrong, never which. Attempts are
limited per (client address, username) so a password cannot be guessed quickly from one place.
"""

from __future__ import annotations

import logging

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from db import users as user_rows
from ops.core.ratelimit import RateLimiter
from ops.http.audit import ANONYMOUS, record
from ops.http.errors import ApiError, read_json
from ops.http.keys import HUB_KEY
from ops.http.live import LIVE_CLIENTS_KEY
from ops.http.models import SessionOut, UserOut
from ops.http.roles import ANY_ROLE, PUBLIC
from ops.http.routes import Api, reply
from ops.http.sessions import (
    clear_session_cookie,
    close_session,
    current_user,
    hash_token,
    open_session,
    session_token,
    set_session_cookie,
)
from ops.users import MAX_PASSWORD_LENGTH, Role, authenticate, normalize_username

_LOGGER = logging.getLogger(__name__)

LOGIN_LIMITER_KEY = web.AppKey("login_limiter", RateLimiter)

api = Api("auth")


class LoginRequest(BaseModel):
    """The body of ``POST /api/v1/auth/login``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


@api.post(
    "/api/v1/auth/login",
    roles=PUBLIC,
    summary="Sign in; sets the session cookie.",
    description=(
        "A wrong username and a wrong password give the same 401. Attempts are limited per "
        "client address and username (web.login_attempts_per_minute); past the limit 429 "
        "with Retry-After."
    ),
    body=LoginRequest,
    response=SessionOut,
    errors={
        401: "Wrong username or password (code invalid_credentials).",
        429: "Too many attempts (code too_many_requests); Retry-After says how long to wait.",
    },
)
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
    response = reply(
        SessionOut(
            user=UserOut(
                id=user.id,
                username=user.username,
                role=Role(user.role),
                display_name=user.display_name,
            ),
            expires_at=expires_at,
        )
    )
    set_session_cookie(response, request, token, expires_at)
    return response


@api.post(
    "/api/v1/auth/logout",
    roles=ANY_ROLE,
    summary="Sign out: ends the session, drops the cookie, closes its live sockets.",
    responses={204: None},
)
async def logout(request: web.Request) -> web.Response:
    """End the caller's session and drop its cookie."""
    user = current_user(request)
    await close_session(request, user)
    await request.app[LIVE_CLIENTS_KEY].close_session(user.token_hash, "signed out")
    response = web.Response(status=204)
    clear_session_cookie(response, request)
    return response


@api.get("/api/v1/auth/me", roles=ANY_ROLE, summary="The signed-in user.", response=SessionOut)
async def me(request: web.Request) -> web.Response:
    """The signed-in user and when the session ends."""
    user = current_user(request)
    async with request.app[HUB_KEY].pool.acquire() as conn:
        row = await user_rows.get_user(conn, user.user_id)
    display_name = row.display_name if row is not None else None
    return reply(
        SessionOut(
            user=UserOut(
                id=user.user_id,
                username=user.username,
                role=user.role,
                display_name=display_name,
            ),
            expires_at=user.expires_at,
        )
    )


def create_login_limiter(attempts_per_minute: int) -> RateLimiter:
    """The per-app login limiter."""
    return RateLimiter.per_minute(attempts_per_minute)
