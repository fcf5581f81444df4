"""Which database errors mean "this row is refused" rather than "the database is away"."""

from __future__ import annotations

import asyncpg

#: Errors that come from a row's content: retrying the same row can never succeed.
REFUSED: tuple[type[asyncpg.PostgresError], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)

#: Errors worth retrying whole: the link, the server or the transaction, not the data.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def refused(exc: BaseException) -> bool:
    """True when the database refused the data itself (a bad value, a broken constraint)."""
    return isinstance(exc, REFUSED)
