"""The one way tests wait for a condition: poll it, bounded, and say what never came true.

Use it where no event says the condition holds (a row written, a counter moved, a page served);
where the product publishes an event, wait for that instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
DEFAULT_INTERVAL = 0.05


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the bound is the point of the helper
    interval: float = DEFAULT_INTERVAL,
    message: str | None = None,
) -> T:
    """Call ``predicate`` (plain or async) until it returns something truthy; return that.

    Raises:
        AssertionError: still falsy after ``timeout`` seconds; names the predicate and its
            last value (``message`` replaces the name when given).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"{what}: not true within {timeout} s (last: {value!r})")
        await asyncio.sleep(interval)
