"""What the hub's parts use of its MQTT link, typed here so none of them needs the adapter.

The link itself is an adapter (``devices.mqtt.link.MqttLink``) and satisfies :class:`MqttPort`;
domain setups and other adapters take the port, so only the composition root names the link.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One message received from the broker."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


MessageHandler = Callable[[MqttMessage], Awaitable[None] | None]


class MqttPort(Protocol):
    """Topics under the hub's prefix, subscriptions that survive reconnects, and publishing."""

    #: The link's adapter name, under which the supervisor reports its state.
    name: str
    hub_id: str

    @property
    def connected(self) -> bool:
        """True while the link holds an accepted broker connection."""
        ...

    @property
    def subscribed(self) -> bool:
        """True while connected with every registered filter granted by the broker."""
        ...

    async def wait_subscribed(self) -> None:
        """Wait until connected with every registered filter granted (callers bound the wait)."""
        ...

    def topic(self, *parts: str) -> str:
        """Join ``parts`` under the configured prefix."""
        ...

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Route messages matching ``topic_filter`` to ``handler`` on every connection."""
        ...

    async def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 0, retain: bool = False
    ) -> None:
        """Publish on the current connection; raises ``AdapterNotReady`` when there is none."""
        ...
