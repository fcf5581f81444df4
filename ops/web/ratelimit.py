"""A sliding-window attempt limiter, bounded in memory.

Used for logins per (client address, username): guessing one user's password from one place is
slowed down, while other users and other places are unaffected. Behind a reverse proxy every
client shares the proxy's address, so the limit then applies per username in practice.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

#: Keys remembered at once; beyond this the stalest are forgotten (an attacker spraying keys
#: cannot grow memory without bound).
DEFAULT_MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one attempt."""

    allowed: bool
    retry_after: float = 0.0
    """Seconds until an attempt will be allowed again (0 when allowed)."""
    first_refusal: bool = False
    """True for the first refusal since the key was last allowed: worth recording, the rest not."""


class RateLimiter:
    """At most ``limit`` attempts per key in any ``window`` seconds."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit = limit
        self.window = window
        self._max_keys = max_keys
        self._clock = clock
        self._attempts: collections.OrderedDict[Hashable, _Window] = collections.OrderedDict()

    def attempt(self, key: Hashable) -> Verdict:
        """Count an attempt for ``key`` if it is allowed.

        A refused attempt is not counted, so waiting out the window always works.
        """
        now = self._clock()
        entry = self._attempts.get(key)
        if entry is None:
            entry = self._attempts[key] = _Window()
            while len(self._attempts) > self._max_keys:
                self._attempts.popitem(last=False)
        else:
            self._attempts.move_to_end(key)
        times = entry.times
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            first, entry.refused = not entry.refused, True
            return Verdict(
                allowed=False,
                retry_after=max(times[0] + self.window - now, 0.001),
                first_refusal=first,
            )
        times.append(now)
        entry.refused = False
        return Verdict(allowed=True)


@dataclass(slots=True)
class _Window:
    times: collections.deque[float] = field(default_factory=collections.deque)
    refused: bool = False
