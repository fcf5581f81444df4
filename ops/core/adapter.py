"""The adapter contract: one coroutine that runs until cancelled or raises, and shows it lives."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from ops.core.bus import Bus


@runtime_checkable
class Adapter(Protocol):
    """Something long-lived that talks to the outside world.

    ``run`` opens its link, does its work and either runs until cancelled or raises; it never
    sleeps to retry (the supervisor does) and never swallows ``CancelledError``.
    ``heartbeat_interval`` is how often it promises proof of life (None: no staleness watch).
    """

    name: str
    heartbeat_interval: float | None

    async def run(self, ctx: AdapterContext) -> None:
        """Do the adapter's work; see the class docstring for the contract."""
        ...


class AdapterContext:
    """What the supervisor hands an adapter for one run: the bus, a logger and the heartbeat."""

    def __init__(
        self,
        name: str,
        bus: Bus,
        *,
        on_first_heartbeat: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.bus = bus
        self.logger = logging.getLogger(f"posko.adapter.{name}")
        self._clock = clock
        self._on_first_heartbeat = on_first_heartbeat
        self.started_at = clock()
        self.last_heartbeat = self.started_at
        self.running_since: float | None = None

    def heartbeat(self) -> None:
        """Record proof of life: a frame decoded, a pong, a message from the peer."""
        self.last_heartbeat = self._clock()
        if self.running_since is None:
            self.running_since = self.last_heartbeat
            if self._on_first_heartbeat is not None:
                self._on_first_heartbeat()
