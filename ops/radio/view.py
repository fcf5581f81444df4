"""The console's picture of each gateway: its configuration beside the adapters' latest word.

Gateways and transceivers publish ``radio.gateway`` and ``radio.transceiver`` as state topics
keyed by gateway id, so the latest of each is read from the bus when asked; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from radio.events import (
    GATEWAY_CHANGED,
    TRANSCEIVER_CHANGED,
    GatewayChanged,
    TransceiverChanged,
)

if TYPE_CHECKING:
    from ops.core.bus import Bus
    from ops.core.config import RadioConfig, RadioGatewayConfig
    from ops.core.events import Topic

State = TypeVar("State", GatewayChanged, TransceiverChanged)


@dataclass(frozen=True, slots=True)
class GatewayView:
    """One configured gateway, with its link and transceiver as last reported (None: not yet)."""

    config: RadioGatewayConfig
    link: GatewayChanged | None
    transceiver: TransceiverChanged | None

    @property
    def id(self) -> str:
        """The gateway's id."""
        return self.config.id

    @property
    def has_rig(self) -> bool:
        """Whether the room tunes this gateway's radio (a rigctld is configured)."""
        return self.config.rig is not None

    @property
    def has_ptt(self) -> bool:
        """Whether the room can key this gateway's transmitter by hand."""
        return self.config.ptt != "none"


class RadioView:
    """Every configured gateway as the console shows it."""

    def __init__(self, config: RadioConfig, bus: Bus) -> None:
        self._gateways = {gateway.id: gateway for gateway in config.gateways}
        self._bus = bus

    def ids(self) -> list[str]:
        """The configured gateway ids, in configuration order."""
        return list(self._gateways)

    def config_of(self, gateway_id: str) -> RadioGatewayConfig | None:
        """One gateway's configuration, or None when there is no such gateway."""
        return self._gateways.get(gateway_id)

    def gateway(self, gateway_id: str) -> GatewayView | None:
        """One gateway, or None when there is no such gateway."""
        config = self._gateways.get(gateway_id)
        if config is None:
            return None
        return GatewayView(
            config=config,
            link=_latest(self._bus, GATEWAY_CHANGED, gateway_id),
            transceiver=_latest(self._bus, TRANSCEIVER_CHANGED, gateway_id),
        )

    def gateways(self) -> list[GatewayView]:
        """Every configured gateway, in configuration order."""
        return [view for gateway_id in self._gateways if (view := self.gateway(gateway_id))]


def _latest(bus: Bus, topic: Topic[State], gateway_id: str) -> State | None:
    envelope = bus.last(topic, gateway_id)
    if envelope is not None:
        return envelope.payload
    # An adapter that keys its state otherwise is still found by the gateway it names.
    for candidate in bus.current(topic):
        if candidate.payload.gateway == gateway_id:
            return candidate.payload
    return None
