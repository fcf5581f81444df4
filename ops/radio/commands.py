"""Operators' requests to the radios: tune a channel, key the transmitter, send a bulletin.

Each request is checked against the configuration, written to the audit log in its own
transaction, announced after the commit, and only then put on the bus as the adapters' command:
what the audit names was asked for, and a request whose entry cannot be written never reaches
the air.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from ops import audit
from radio.events import (
    KEY_TRANSMITTER,
    SELECT_CHANNEL,
    SEND_BULLETIN,
    KeyTransmitter,
    SelectChannel,
    SendBulletin,
)

if TYPE_CHECKING:
    from db.pool import Pool
    from ops.core.bus import Bus
    from ops.radio.view import GatewayView, RadioView

SOURCE: Final = "radio"
#: The APRS group of a bulletin to every unit of a kind (``BLN0{group}``); 1-5 letters or digits.
KIND_GROUPS: Final = {
    "volunteer": "VOL",
    "social_worker": "SOC",
    "companion": "COMP",
    "fire": "FIRE",
    "public_order": "ORDER",
    "medic": "MEDIC",
    "logistics": "LOG",
}
GROUP_PATTERN: Final = r"^[A-Za-z0-9]{1,5}$"
#: The longest bulletin: one APRS message.
BULLETIN_LIMIT: Final = 67
_GROUP = re.compile(GROUP_PATTERN)


class RadioRefused(Exception):  # noqa: N818 - reads as the condition it reports
    """A request the configuration does not allow; ``code`` is the API's error code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def group_code(group: str) -> str:
    """The APRS group of ``group``: a unit kind's group, or the code itself upper-cased.

    Raises:
        RadioRefused: neither a unit kind nor 1-5 letters or digits.
    """
    if group in KIND_GROUPS:
        return KIND_GROUPS[group]
    if _GROUP.fullmatch(group):
        return group.upper()
    raise RadioRefused(
        400,
        "invalid_field",
        f"group: {group!r} is neither a unit kind nor 1-5 letters or digits",
        "group",
    )


class RadioCommands:
    """Turns operators' requests into audited bus commands."""

    def __init__(self, pool: Pool, bus: Bus, view: RadioView) -> None:
        self._pool = pool
        self._bus = bus
        self._view = view

    async def select_channel(self, gateway_id: str, channel: str, *, actor: str) -> SelectChannel:
        """Ask a gateway's transceiver to tune a channel of its plan.

        Raises:
            RadioRefused: 404 no such gateway, 409 the gateway has no rig to tune, 400 the
                channel is not in its plan.
        """
        view = self._gateway(gateway_id)
        if not view.has_rig:
            raise RadioRefused(
                409, "no_rig", f"gateway {gateway_id!r} has no rig to tune (set its rig)"
            )
        plan = [entry.name for entry in view.config.channels]
        if channel not in plan:
            raise RadioRefused(
                400,
                "unknown_channel",
                f"gateway {gateway_id!r} has no channel {channel!r} (its plan: {', '.join(plan)})",
                "channel",
            )
        command = SelectChannel(gateway=gateway_id, channel=channel, requested_by=actor)
        before = None if view.transceiver is None else view.transceiver.channel
        await self._audited(
            actor,
            "radio.channel",
            f"radio_gateway:{gateway_id}",
            before={"channel": before},
            after={"channel": channel},
        )
        self._bus.publish(SELECT_CHANNEL, command, source=SOURCE, key=gateway_id)
        return command

    async def key_transmitter(self, gateway_id: str, *, on: bool, actor: str) -> KeyTransmitter:
        """Key or unkey a gateway's transmitter by hand (its time-out unkeys it anyway).

        Raises:
            RadioRefused: 404 no such gateway, 409 the TNC keys itself (no PTT line or rig).
        """
        view = self._gateway(gateway_id)
        if not view.has_ptt:
            raise RadioRefused(
                409, "no_ptt", f"gateway {gateway_id!r} keys itself (ptt = none): no manual PTT"
            )
        command = KeyTransmitter(gateway=gateway_id, on=on, requested_by=actor)
        before = None if view.transceiver is None else view.transceiver.ptt
        await self._audited(
            actor,
            "radio.ptt",
            f"radio_gateway:{gateway_id}",
            before={"ptt": before},
            after={"ptt": on},
        )
        self._bus.publish(KEY_TRANSMITTER, command, source=SOURCE, key=gateway_id)
        return command

    async def send_bulletin(
        self, group: str, text: str, *, gateway_id: str | None, actor: str
    ) -> SendBulletin:
        """Send a group bulletin on one gateway, or on every gateway.

        Raises:
            RadioRefused: 400 a bad group, 404 no such gateway, 409 no gateway configured.
        """
        code = group_code(group)
        if gateway_id is not None:
            self._gateway(gateway_id, field="gateway")
        elif not self._view.ids():
            raise RadioRefused(409, "no_gateway", "no radio gateway is configured")
        command = SendBulletin(group=code, text=text, requested_by=actor, gateway=gateway_id)
        await self._audited(
            actor,
            "radio.bulletin",
            f"radio_gateway:{gateway_id}" if gateway_id else "radio",
            after={"group": code, "text": text, "gateway": gateway_id},
        )
        self._bus.publish(SEND_BULLETIN, command, source=SOURCE, key=code)
        return command

    def _gateway(self, gateway_id: str, *, field: str | None = None) -> GatewayView:
        view = self._view.gateway(gateway_id)
        if view is None:
            raise RadioRefused(404, "gateway_not_found", f"no radio gateway {gateway_id!r}", field)
        return view

    async def _audited(
        self,
        actor: str,
        action: str,
        target: str,
        *,
        before: object = None,
        after: object = None,
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            entry = await audit.write(
                conn, actor=actor, action=action, target=target, before=before, after=after
            )
        audit.announce(self._bus, entry, source=SOURCE)
