"""The radio channel plugged into dispatch, against the real database and broker, with a unit's
handheld on a KISS-over-TCP TNC played by the test: an order goes out as numbered APRS messages
and the unit's acks close it (a lost try is retried), an ack over the MQTT app stops the radio
tries, and a unit's APRS position updates it with the source recorded as radio."""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from db import dispatch as rows
from db import units as unit_rows
from ops.app import Hub
from ops.dispatch.setup import add_channel, parts_of
from radio import aprs, ax25
from radio.channel import RadioChannel
from radio.gateway import Gateway
from tests.component.radio_support import FAST_BACKOFF, TcpTnc, frame
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.integration.dispatch_support import app_for, running
from tests.integration.units_support import add_case, add_unit, new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0


def new_callsign() -> str:
    """A callsign no other test (or run) uses: the outbox is shared by every test of a run."""
    return "Y" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(5)) + "-7"


class Directory:
    def __init__(self) -> None:
        self.table: dict[str, str] = {}

    def unit_for(self, callsign: str) -> str | None:
        return self.table.get(callsign.upper())


@dataclass
class Room:
    hub: Hub
    tnc: TcpTnc
    gateway: Gateway
    channel: RadioChannel
    directory: Directory

    def messages_to(self, callsign: str) -> list[aprs.Message]:
        return [
            p
            for f in self.tnc.frames
            if isinstance(p := aprs.decode(f), aprs.Message) and p.addressee == callsign
        ]


@contextlib.asynccontextmanager
async def radio_hub(make_hub_config: ConfigFactory, **dispatch: float) -> AsyncIterator[Room]:
    config = make_hub_config(dispatch={"watch_interval": 0.1, **dispatch})
    tnc = TcpTnc()
    await tnc.start()
    try:
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            directory = Directory()
            gateway = Gateway(unique_name("gw"), tnc.url, backoff=FAST_BACKOFF)
            channel = RadioChannel(
                hub.bus,
                [gateway],
                directory,
                callsign="POSKO",
                tocall="APZPSK",
                path=["WIDE1-1"],
                retry=[0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
            )
            hub.supervisor.start(gateway)
            add_channel(hub, channel)
            await eventually(lambda: gateway.up, timeout=WAIT)
            yield Room(hub, tnc, gateway, channel, directory)
    finally:
        await tnc.stop()


async def dispatch(hub: Hub, case_id: int, unit_id: str) -> str:
    detail = await parts_of(hub).service.dispatch(
        case_id=case_id, unit_ids=[unit_id], message="go", actor="tester", auto_escalate=False
    )
    return detail.order.id


async def order_status(hub: Hub, order_id: str) -> str:
    async with hub.pool.acquire() as conn:
        order = await rows.get_order(conn, order_id)
    assert order is not None
    return order.status


async def test_an_order_goes_by_radio_and_the_units_ack_closes_it(
    make_hub_config: ConfigFactory,
) -> None:
    async with radio_hub(make_hub_config, radio_ack_timeout=30.0) as room:
        hub = room.hub
        spot = new_spot()
        callsign = new_callsign()
        unit_id = await add_unit(hub, at=spot.near(0.5), channels=(("radio", callsign),))
        room.directory.table[callsign] = unit_id
        order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
        # The handheld misses the first try of each part and acks the second.
        numbers: set[str] = set()

        def tried_twice() -> bool:
            messages = room.messages_to(callsign)
            seen = {m.number for m in messages}
            return bool(seen) and all(
                sum(m.number == n for m in messages) >= 2 for n in seen if n is not None
            )

        await eventually(tried_twice, timeout=WAIT)
        for message in room.messages_to(callsign):
            assert message.text.startswith(f"#{order_id[:6]} ")
            if message.number is not None and message.number not in numbers:
                numbers.add(message.number)
                room.tnc.send(frame(callsign, aprs.encode_ack("POSKO", message.number)))

        async def acknowledged() -> bool:
            return await order_status(hub, order_id) == "acknowledged"

        await eventually(acknowledged, timeout=WAIT)
        detail = await parts_of(hub).service.detail(order_id)
        [assignment] = detail.assignments
        assert (assignment.status, assignment.ack_channel) == ("acknowledged", "radio")
        assert "sent" in [e.kind for e in detail.events]
        assert room.channel.on_air == []


async def test_an_ack_over_the_app_stops_the_radio_tries(make_hub_config: ConfigFactory) -> None:
    async with radio_hub(make_hub_config, mqtt_ack_timeout=0.5, radio_ack_timeout=60.0) as room:
        hub = room.hub
        spot = new_spot()
        callsign = new_callsign()
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("mqtt", "placeholder"), ("radio", callsign))
        )
        async with hub.pool.acquire() as conn:
            await conn.execute(
                """UPDATE units SET channels = jsonb_build_array(
                       jsonb_build_object('channel', 'mqtt', 'address', id),
                       jsonb_build_object('channel', 'radio', 'address', $2::text))
                   WHERE id = $1""",
                unit_id,
                callsign,
            )
        room.directory.table[callsign] = unit_id
        async with running(app_for(hub, unit_id, ack=False)) as app:
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            # Nobody answered the app: the ladder moved on to the radio, which keeps trying.
            await eventually(lambda: len(room.messages_to(callsign)) >= 2, timeout=WAIT)
            assert room.channel.on_air != []
            # The app's acknowledgement arrives after all.
            await app._publish(app.events_topic, {"type": "ack", "order": order_id})

            async def acknowledged() -> bool:
                return await order_status(hub, order_id) == "acknowledged"

            await eventually(acknowledged, timeout=WAIT)
        await eventually(lambda: room.channel.on_air == [], timeout=WAIT)
        detail = await parts_of(hub).service.detail(order_id)
        assert [(c.channel, c.state) for c in detail.copies][-1] == ("radio", "cancelled")


async def test_a_units_aprs_position_updates_it_with_the_source_radio(
    make_hub_config: ConfigFactory,
) -> None:
    async with radio_hub(make_hub_config) as room:
        hub = room.hub
        spot = new_spot()
        callsign = new_callsign()
        unit_id = await add_unit(hub, at=spot.near(0.5), channels=(("radio", callsign),))
        room.directory.table[callsign] = unit_id
        lat, lon = spot.near(3.0)
        destination, info = aprs.encode_mic_e(aprs.Position(lat, lon, format="mic-e"))
        room.tnc.send(
            ax25.Frame(destination=destination, source=ax25.Address.parse(callsign), info=info)
        )

        async def moved() -> unit_rows.UnitRow | None:
            async with hub.pool.acquire() as conn:
                row = await unit_rows.get_unit(conn, unit_id)
            return row if row is not None and row.position_source == "radio" else None

        row = await eventually(moved, timeout=WAIT)
        assert row.lat is not None
        assert row.lon is not None
        assert abs(row.lat - lat) < 0.001
        assert abs(row.lon - lon) < 0.001
