"""Wiring of radio into a hub: the directory, the radio log, the view, commands and the adapters.

For each configured gateway one transceiver (``radio.transceiver``; PTT and CAT control) and one
gateway (``radio.gateway``; the KISS link, keyed through that transceiver) start on the
supervisor, and one radio channel (``radio.channel``) carries dispatch's copies over all of them
(``ops.dispatch.setup.add_channel``). With no gateway configured only the directory, the log,
the view and the API run: the console shows an empty radio panel, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops.core.parts import PartKey
from ops.dispatch.setup import add_channel
from ops.radio.commands import RadioCommands
from ops.radio.directory import Directory
from ops.radio.log import LogWriter
from ops.radio.view import RadioView
from radio.channel import RadioChannel
from radio.gateway import Gateway
from radio.transceiver import ChannelPlan, Transceiver

if TYPE_CHECKING:
    from ops.core.hub import HubContext


@dataclass(slots=True)
class RadioParts:
    """The running parts of radio the web layer reaches."""

    directory: Directory
    log: LogWriter
    view: RadioView
    commands: RadioCommands


RADIO: PartKey[RadioParts] = PartKey("radio")


def parts_of(hub: HubContext) -> RadioParts:
    """The radio parts of a started hub."""
    return hub.parts.get(RADIO)


async def setup(hub: HubContext) -> None:
    """Start radio on a hub (one line in ``ops.app.domain_services``, after dispatch)."""
    cfg = hub.config.radio
    directory = Directory(hub.pool, hub.bus)
    await directory.load()
    log = LogWriter(hub.pool, hub.bus)
    hub.on_stop(log.drain)
    view = RadioView(cfg, hub.bus)
    parts = RadioParts(
        directory=directory,
        log=log,
        view=view,
        commands=RadioCommands(hub.pool, hub.bus, view),
    )
    hub.parts.put(RADIO, parts)
    hub.supervisor.start(directory)
    hub.supervisor.start(log)
    if cfg.gateways:
        on_air = start_adapters(hub, directory)

        async def stop_on_air() -> None:
            # Before the last flush (LIFO): the final unkeying at shutdown is logged too.
            for name in on_air:
                await hub.supervisor.stop(name)

        hub.on_stop(stop_on_air)


def start_adapters(hub: HubContext, directory: Directory) -> list[str]:
    """One transceiver and one gateway per configured gateway, and the radio channel.

    Returns the adapters' names in the order to stop them: the channel, then the links, then
    the transceivers (which unkey as they stop).
    """
    cfg = hub.config.radio
    gateways: list[Gateway] = []
    transceivers: list[Transceiver] = []
    for gateway_cfg in cfg.gateways:
        transceiver = Transceiver(
            gateway_cfg.id,
            ptt=gateway_cfg.ptt,
            rig=gateway_cfg.rig,
            plan=[
                ChannelPlan(
                    name=plan.name,
                    frequency=plan.frequency,
                    mode=plan.mode,
                    passband=plan.passband,
                )
                for plan in gateway_cfg.channels
            ],
            default_channel=gateway_cfg.default_channel,
            tx_timeout=gateway_cfg.tx_timeout,
        )
        gateway = Gateway(
            gateway_cfg.id,
            gateway_cfg.url,
            kiss_port=gateway_cfg.kiss_port,
            quiet_after=gateway_cfg.quiet_after,
            connect_timeout=gateway_cfg.connect_timeout,
            keyer=transceiver,
        )
        hub.supervisor.start(transceiver)
        hub.supervisor.start(gateway)
        gateways.append(gateway)
        transceivers.append(transceiver)
    channel = RadioChannel(
        hub.bus,
        gateways,
        directory,
        callsign=cfg.callsign,
        tocall=cfg.tocall,
        path=cfg.path,
        retry=cfg.retry,
    )
    add_channel(hub, channel)
    return [channel.name, *(g.name for g in gateways), *(t.name for t in transceivers)]
