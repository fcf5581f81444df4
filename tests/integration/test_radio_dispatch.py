"""Dispatch over the air, end to end: the whole hub with a gateway on a simulated TNC whose
units move, beacon, acknowledge and miss messages as configured.

An order to a radio unit reaches the simulated unit as numbered APRS messages and is
acknowledged (the copy goes sent → acknowledged); a unit that misses the first try gets a retry
and acknowledges that; a silent unit times out and the ladder moves to its next channel or the
next unit; an order acknowledged over the unit's app stops its radio retries at once; and a
unit's beacons, in every format, move it on the map with the source ``radio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest

from db import radio as radio_rows
from db import units as unit_rows
from ops.app import Hub
from ops.dispatch.setup import parts_of
from ops.radio.setup import parts_of as radio_parts
from radio import aprs
from radio.rigsim import RigctldServer
from radio.simulator import SimStation, SimulatedTnc, loop_route
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory
from tests.integration.dispatch_support import app_for, running
from tests.integration.units_support import Spot, add_case, add_unit, new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 20.0
#: Seconds between re-sends of an unacknowledged message: short, so retries show quickly.
RETRY = [0.5] * 20
#: The room's station in these tests.
ROOM = "YB0PSK"
#: The simulated channel's rate: a frame is heard once its airtime is over, as on a real
#: 1200-baud channel.
AIR_BAUD = 1200
#: The simulator's seed: which messages a lossy unit misses is the same at every run.
SEED = 7


def new_callsign() -> str:
    """A callsign no other test's unit has (the test database is shared by the whole run)."""
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(3))
    return f"YC{secrets.randbelow(10)}{letters}-{secrets.randbelow(15) + 1}"


def on_the_air(spot: Spot, north_km: float, **options: Any) -> SimStation:
    """A simulated unit patrolling near ``spot``; quick to acknowledge unless told otherwise."""
    settings: dict[str, Any] = {"beacon_every": None, "ack_delay": 0.2, **options}
    return SimStation(new_callsign(), loop_route(spot.near(north_km), 0.2), **settings)


@contextlib.asynccontextmanager
async def radio_hub(
    make_hub_config: ConfigFactory,
    stations: list[SimStation],
    *,
    dispatch: dict[str, Any] | None = None,
    pty: bool = False,
    keyed: bool = False,
) -> AsyncIterator[tuple[Hub, SimulatedTnc]]:
    """A hub whose one gateway is a simulated TNC with ``stations`` on the air, linked up.

    The TNC serves KISS over TCP, or with ``pty`` on a pseudo-terminal (a serial TNC). With
    ``keyed`` the room keys its transmitter through a rigctld for each frame's airtime, while
    the simulated channel itself passes frames at once: answers come back while the room is
    still keyed.
    """
    where: dict[str, Any] = {"pty": True} if pty else {"tcp": ("127.0.0.1", 0)}
    gateway: dict[str, Any] = {"id": "sim"}
    rig = RigctldServer() if keyed else None
    if rig is not None:
        where["rig"] = rig
    baud = None if keyed else AIR_BAUD
    async with SimulatedTnc(stations, seed=SEED, hub_callsign=ROOM, baud=baud, **where) as tnc:
        if rig is not None:
            gateway |= {"ptt": "rig", "rig": f"tcp://127.0.0.1:{rig.port}"}
        config = make_hub_config(
            radio={
                "callsign": ROOM,
                "retry": RETRY,
                "gateways": [{"url": tnc.url, **gateway}],
            },
            dispatch={
                "radio_ack_timeout": 30.0,
                "mqtt_ack_timeout": 30.0,
                "watch_interval": 0.1,
                **(dispatch or {}),
            },
        )
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            if not pty:  # a terminal has no connections to count; its first frame shows it
                await eventually(lambda: tnc.hosts == 1, timeout=WAIT, message="gateway linked")
            yield hub, tnc


async def radio_unit(hub: Hub, spot: Spot, station: SimStation, north_km: float) -> str:
    """A unit reached by radio only, at ``north_km`` from the spot, known to the directory."""
    return await add_unit(hub, at=spot.near(north_km), channels=(("radio", station.callsign),))


async def dispatch(hub: Hub, case_id: int, unit_id: str, *, escalate: bool = False) -> str:
    detail = await parts_of(hub).service.dispatch(
        case_id=case_id,
        unit_ids=[unit_id],
        message="Segera ke lokasi",
        actor="tester",
        auto_escalate=escalate,
    )
    return detail.order.id


async def order_status(hub: Hub, order_id: str, status: str) -> None:
    async def reached() -> bool:
        detail = await parts_of(hub).service.detail(order_id)
        return detail.order.status == status

    await eventually(reached, timeout=WAIT, message=f"order {order_id} {status}")


async def thread_states(hub: Hub, unit_id: str) -> dict[str, tuple[str, int]]:
    """The unit's radio thread as the console shows it: number → (state, tries)."""
    async with hub.pool.acquire() as conn:
        thread = await radio_rows.thread(conn, unit_id)
    assert thread is not None
    return {m.number: (m.state, m.tries) for m in thread.outgoing}


def orders_heard(station: SimStation, order_id: str) -> list[str | None]:
    """The message numbers of every try of the order that reached the station."""
    return [m.number for m in station.heard if m.text.startswith(f"#{order_id[:6]} ")]


@pytest.mark.parametrize(
    ("pty", "keyed"), [(False, False), (True, False), (False, True)], ids=["tcp", "pty", "keyed"]
)
async def test_an_order_reaches_the_unit_on_the_air_and_is_acknowledged(
    make_hub_config: ConfigFactory, pty: bool, keyed: bool
) -> None:
    spot = new_spot()
    station = on_the_air(spot, 0.5, ack_delay=0.0 if keyed else 0.2)
    async with radio_hub(make_hub_config, [station], pty=pty, keyed=keyed) as (hub, tnc):
        unit_id = await radio_unit(hub, spot, station, 0.5)
        order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
        await order_status(hub, order_id, "acknowledged")
        detail = await parts_of(hub).service.detail(order_id)
        # The console's thread of the unit: each message acked.

        async def acked_at_once() -> bool:
            states = await thread_states(hub, unit_id)
            return set(states) == set(station.acked) and all(
                state == "acked" for state, _ in states.values()
            )

        await eventually(acked_at_once, timeout=WAIT)
    # The order's text, split into numbered messages; each kept once and acknowledged.
    assert station.inbox[0].text.startswith(f"#{order_id[:6]} {detail.case_number} HIGH:")
    kept = [m.number for m in station.inbox]
    assert len(set(kept)) == len(kept)
    assert set(station.acked) == set(kept)  # a retry that crossed its ack is acked again
    assert [(c.channel, c.state) for c in detail.copies] == [("radio", "acknowledged")]
    assert detail.assignments[0].ack_channel == "radio"
    kinds = [e.kind for e in detail.events if e.channel == "radio"]
    assert kinds.index("sent") < kinds.index("acknowledged")
    # What the hub sent is an APRS message from the room to the unit's callsign.
    frames = [f for f in tnc.received if f.info.startswith(f":{station.callsign}".encode())]
    assert len(frames) >= len(station.inbox)
    assert {str(f.source) for f in frames} == {ROOM}


async def test_a_missed_message_is_retried_until_the_unit_acknowledges(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    station = on_the_air(spot, 0.5, loss=1.0)  # the first tries do not get through
    async with radio_hub(make_hub_config, [station]) as (hub, _):
        unit_id = await radio_unit(hub, spot, station, 0.5)
        order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
        await eventually(lambda: len(orders_heard(station, order_id)) >= 2, timeout=WAIT)
        station.loss = 0.0  # the unit is back in range: the next retry gets through
        await order_status(hub, order_id, "acknowledged")
        detail = await parts_of(hub).service.detail(order_id)

        async def retried_then_acked() -> bool:
            states = await thread_states(hub, unit_id)
            return bool(states) and all(
                state == "acked" and tries >= 2 for state, tries in states.values()
            )

        await eventually(retried_then_acked, timeout=WAIT)
    [number] = set(orders_heard(station, order_id))  # every retry: the same number
    assert station.missed.count(number) >= 2
    # Each part of the order is kept once, under the number of all its tries.
    parts = {m.number for m in station.heard}
    kept = [m.number for m in station.inbox]
    assert sorted(kept) == sorted(parts)
    assert set(station.acked) == set(parts)
    assert [(c.channel, c.state) for c in detail.copies] == [("radio", "acknowledged")]
    assert detail.copies[0].attempts == 1  # retried on the air, not re-dispatched


async def test_a_lossy_unit_gets_every_order_through_the_retries(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    # With the run's seed this callsign misses the first two messages it hears, then about
    # every other one.
    lossy = SimStation("YC9LOS-5", loop_route(spot.near(0.5), 0.2), beacon_every=None, loss=0.5)
    lossy.ack_delay = 0.1
    async with radio_hub(make_hub_config, [lossy]) as (hub, _):
        unit_id = await radio_unit(hub, spot, lossy, 0.5)
        for _ in range(3):
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            await order_status(hub, order_id, "acknowledged")
            async with hub.pool.acquire() as conn:  # back from the scene, ready for the next
                await conn.execute("UPDATE units SET status = 'available' WHERE id = $1", unit_id)
    assert len(lossy.missed) >= 2
    # Each message it missed came again until it got through, and was kept once.
    kept = [m.number for m in lossy.inbox]
    assert set(lossy.missed) <= set(kept)
    assert len(kept) == len(set(kept))
    assert set(lossy.acked) == set(kept)


async def test_a_silent_unit_times_out_and_its_app_gets_the_order(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    silent = on_the_air(spot, 0.5, loss=1.0)
    async with radio_hub(make_hub_config, [silent], dispatch={"radio_ack_timeout": 1.5}) as (
        hub,
        _,
    ):
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("radio", silent.callsign), ("mqtt", "placeholder"))
        )
        async with hub.pool.acquire() as conn:
            await conn.execute(
                """UPDATE units SET channels = jsonb_build_array(
                       jsonb_build_object('channel', 'radio', 'address', $2::text),
                       jsonb_build_object('channel', 'mqtt', 'address', id))
                   WHERE id = $1""",
                unit_id,
                silent.callsign,
            )
        async with running(app_for(hub, unit_id)) as app:
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            await order_status(hub, order_id, "acknowledged")
            assert app.acted == [order_id]
        detail = await parts_of(hub).service.detail(order_id)
    assert orders_heard(silent, order_id)  # it was on the air, nobody answered
    assert silent.acked == []
    assert [(c.channel, c.state) for c in detail.copies] == [
        ("radio", "timed_out"),
        ("mqtt", "acknowledged"),
    ]


async def test_a_silent_unit_is_escalated_to_the_next_unit_on_the_air(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    silent = on_the_air(spot, 0.5, loss=1.0)
    awake = on_the_air(spot, 1.5)
    async with radio_hub(make_hub_config, [silent, awake], dispatch={"radio_ack_timeout": 5.0}) as (
        hub,
        _,
    ):
        first = await radio_unit(hub, spot, silent, 0.5)
        second = await radio_unit(hub, spot, awake, 1.5)
        order_id = await dispatch(hub, await add_case(hub, spot), first, escalate=True)
        await order_status(hub, order_id, "acknowledged")
        detail = await parts_of(hub).service.detail(order_id)
    statuses = {a.unit_id: a.status for a in detail.assignments}
    assert statuses == {first: "exhausted", second: "acknowledged"}
    assert silent.acked == []
    # The same order (the same text) went to the next unit.
    assert [m.text for m in awake.inbox] == list(dict.fromkeys(m.text for m in silent.heard))
    kinds = [e.kind for e in detail.events]
    for expected in ("timed_out", "exhausted", "escalated", "acknowledged"):
        assert expected in kinds


async def test_an_order_acknowledged_on_the_app_stops_its_radio_retries(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    silent = on_the_air(spot, 0.5, loss=1.0)
    async with radio_hub(make_hub_config, [silent], dispatch={"mqtt_ack_timeout": 0.5}) as (
        hub,
        tnc,
    ):
        # Reached by its app first; the app takes the order but nobody answers there in time,
        # so the ladder moves on to the radio, which keeps trying.
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("mqtt", "placeholder"), ("radio", silent.callsign))
        )
        async with hub.pool.acquire() as conn:
            await conn.execute(
                """UPDATE units SET channels = jsonb_build_array(
                       jsonb_build_object('channel', 'mqtt', 'address', id),
                       jsonb_build_object('channel', 'radio', 'address', $2::text))
                   WHERE id = $1""",
                unit_id,
                silent.callsign,
            )
        async with running(app_for(hub, unit_id, ack=False)) as app:
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            await eventually(lambda: len(orders_heard(silent, order_id)) >= 2, timeout=WAIT)
            # ...and then the answer comes on the app after all.
            await app._publish(app.events_topic, {"type": "ack", "order": order_id})
            await order_status(hub, order_id, "acknowledged")

            async def withdrawn() -> bool:
                detail = await parts_of(hub).service.detail(order_id)
                # The app's copy had timed out when its answer came; the radio's is withdrawn.
                return detail.assignments[0].ack_channel == "mqtt" and [
                    (c.channel, c.state) for c in detail.copies
                ] == [("mqtt", "timed_out"), ("radio", "cancelled")]

            await eventually(withdrawn, timeout=WAIT)
            heard = len(orders_heard(silent, order_id))
            frames = len(tnc.received)
            # Several retry gaps go by: no further copy of that message goes on the air (a
            # bounded wait is the only way to see that nothing more comes).
            await asyncio.sleep(RETRY[0] * 4)
        assert len(orders_heard(silent, order_id)) == heard
        assert len(tnc.received) == frames


async def test_beacons_in_every_format_move_the_unit_with_the_source_radio(
    make_hub_config: ConfigFactory,
) -> None:
    spot = new_spot()
    stations = [
        on_the_air(spot, 0.5 + n, beacon_every=0.3, beacon_format=fmt)
        for n, fmt in enumerate(("uncompressed", "compressed", "mic-e"))
    ]
    async with radio_hub(make_hub_config, stations) as (hub, _):
        # Registered with a position an hour old somewhere else: the beacons must move them.
        units = {
            station.callsign: await add_unit(
                hub,
                at=spot.near(50.0),
                age_s=3600.0,
                channels=(("radio", station.callsign),),
            )
            for station in stations
        }
        for station in stations:

            async def moved(station: SimStation = station) -> unit_rows.UnitRow | None:
                async with hub.pool.acquire() as conn:
                    row = await unit_rows.get_unit(conn, units[station.callsign])
                assert row is not None
                return row if row.position_source == "radio" else None

            row = await eventually(moved, timeout=WAIT, message=f"{station.callsign} moved")
            assert row.lat is not None
            assert row.lon is not None
            sent = station.beacons
            assert any(
                abs(row.lat - b.lat) < 0.001 and abs(row.lon - b.lon) < 0.001 for b in sent
            ), (row.lat, row.lon, sent)


async def test_a_bulletin_reaches_the_units_of_its_group(make_hub_config: ConfigFactory) -> None:
    spot = new_spot()
    volunteer = on_the_air(spot, 0.5, group="VOL")
    firefighter = on_the_air(spot, 1.0, group="FIRE")
    async with radio_hub(make_hub_config, [volunteer, firefighter]) as (hub, _):
        await radio_parts(hub).commands.send_bulletin(
            "volunteer", "Apel siaga pukul 07.00", gateway_id=None, actor="tester"
        )
        await eventually(lambda: volunteer.bulletins, timeout=WAIT)
        [bulletin] = volunteer.bulletins
    assert bulletin.addressee.startswith("BLN")
    assert bulletin.addressee.endswith("VOL")
    assert bulletin.text == "Apel siaga pukul 07.00"
    assert firefighter.bulletins == []
    assert volunteer.acked == []  # bulletins are never acknowledged


async def test_free_text_from_a_unit_is_a_note_on_its_order_or_else_a_field_case(
    make_hub_config: ConfigFactory,
) -> None:
    """A unit with no order reports a landslide: a field case at its position; once it has an
    order, its text is a note on that order's case. A repeat of the same message (its ack was
    lost) is acked again and acted on once."""
    spot = new_spot()
    station = on_the_air(spot, 0.5)
    landslide = f"Longsor tutup jalan {secrets.token_hex(3)}"
    progress = f"Korban dievakuasi {secrets.token_hex(3)}"
    async with radio_hub(make_hub_config, [station]) as (hub, tnc):
        unit_id = await radio_unit(hub, spot, station, 0.5)
        report = aprs.Message(ROOM, landslide, "71")
        for _ in range(2):  # the unit did not hear the room's ack and sends it again
            await tnc.transmit(station, aprs.encode_message(report))

        async def field_cases() -> list[Any]:
            async with hub.pool.acquire() as conn:
                return list(
                    await conn.fetch(
                        "SELECT id, channel, lat, lon, description FROM cases"
                        " WHERE description LIKE '%' || $1 || '%'",
                        landslide,
                    )
                )

        await eventually(lambda: station.acks_heard.count("71") == 2, timeout=WAIT)
        [case] = await eventually(field_cases, timeout=WAIT)
        case_id = await add_case(hub, spot)
        await order_status(hub, await dispatch(hub, case_id, unit_id), "acknowledged")
        await tnc.transmit(station, aprs.encode_message(aprs.Message(ROOM, progress, "72")))

        async def notes() -> list[str]:
            async with hub.pool.acquire() as conn:
                return list(
                    await conn.fetch("SELECT body FROM case_notes WHERE case_id = $1", case_id)
                )

        [note] = await eventually(notes, timeout=WAIT)
        # Dispatch handles a unit's events in order: the repeat came before the note's text.
        assert len(await field_cases()) == 1
    assert case["channel"] == "field"
    assert (case["lat"], case["lon"]) == pytest.approx(spot.near(0.5))
    assert note["body"] == f"[radio] {progress}"
