"""One rate limiter for every door of the hub: a token bucket per key, bounded in memory.

Logins per (address, username), public reports per address, messages per live socket and per
MQTT device all use it. A key may spend ``burst`` at once and earns ``rate`` more per second, so
``per_minute(n)`` lets ``n`` through at once and then one every ``60 / n`` seconds.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Self

#: Keys remembered at once; beyond this the stalest are forgotten, so a flood of made-up keys
#: (addresses, device ids) cannot grow memory without bound. A forgotten key starts full.
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
    """At most ``burst`` attempts at once per key, refilled at ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be positive, burst at least 1, max_keys at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: collections.OrderedDict[Hashable, _Bucket] = collections.OrderedDict()

    @classmethod
    def per_minute(
        cls,
        limit: int,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> Self:
        """``limit`` attempts at once, then one more every ``60 / limit`` seconds."""
        return cls(limit / 60.0, limit, max_keys=max_keys, clock=clock)

    def attempt(self, key: Hashable = None) -> Verdict:
        """Spend one token of ``key`` if it has one.

        A refused attempt spends nothing, so waiting ``retry_after`` always works.
        """
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            first, bucket.refused = not bucket.refused, True
            return Verdict(
                allowed=False,
                retry_after=max((1.0 - bucket.tokens) / self.rate, 0.001),
                first_refusal=first,
            )
        bucket.tokens -= 1.0
        bucket.refused = False
        return Verdict(allowed=True)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    refused: bool = False
