"""What a domain's setup may use of the hub, so no domain imports the composition root.

``ops.app.Hub`` satisfies :class:`HubContext`. A domain's ``setup(hub)`` starts its adapters on
``hub.supervisor``, registers what others reach in ``hub.parts`` and its teardown with
``hub.on_stop``; the composition root lists the setups and runs them in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncpg

    from ops.core.bus import Bus
    from ops.core.config import Config
    from ops.core.mqtt import MqttPort
    from ops.core.parts import Parts
    from ops.core.supervisor import Supervisor


class HubContext(Protocol):
    """The running hub as its domains see it."""

    @property
    def config(self) -> Config:
        """The validated configuration the hub runs with."""
        ...

    @property
    def bus(self) -> Bus:
        """The hub's one bus."""
        ...

    @property
    def supervisor(self) -> Supervisor:
        """Starts, restarts and stops every adapter."""
        ...

    @property
    def parts(self) -> Parts:
        """The typed registry of the domains' running parts."""
        ...

    @property
    def mqtt(self) -> MqttPort:
        """The hub's MQTT link."""
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """The monotonic clock the domains judge time by (silence, hysteresis); tests move it."""
        ...

    @property
    def pool(self) -> asyncpg.Pool:
        """The database pool; only valid while the hub runs."""
        ...

    def on_stop(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Run ``callback`` at shutdown, before everything started earlier (LIFO)."""
        ...


#: A domain's entry point: start its parts on a hub that has its pool and MQTT link.
DomainSetup = Callable[[HubContext], Awaitable[None]]
