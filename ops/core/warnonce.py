"""Logging bad input once per source, so a misbehaving source cannot flood the log."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

DEFAULT_LIMIT = 1_000


class WarnOnce:
    """Warn the first time a key is seen, for at most ``limit`` keys.

    Past the limit one more line says so, and the rest are left to the caller's counters: a
    storm of made-up ids must not become a storm of log lines (or a set that grows forever).
    """

    def __init__(self, logger: logging.Logger, limit: int = DEFAULT_LIMIT) -> None:
        self._logger = logger
        self._limit = limit
        self._seen: set[Hashable] = set()
        self._full = False

    def __call__(self, key: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` at WARNING if ``key`` is new; True when it was logged."""
        if key in self._seen:
            return False
        if len(self._seen) < self._limit:
            self._seen.add(key)
            self._logger.warning(message, *args)
            return True
        if not self._full:
            self._full = True
            self._logger.warning(
                "more than %d sources of dropped input; the rest are only counted", self._limit
            )
        return False
