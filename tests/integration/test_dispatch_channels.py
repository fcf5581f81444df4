"""Channels on the bus, against the real database and broker: a radio stuck for 30 s per copy
holds up neither the MQTT app's copies nor the ladder's timers nor the database; an
acknowledgement on one channel withdraws the copy queued on another; a copy whose lease runs
out with no word from its channel is handed out again, with the same order id and attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import asyncpg
import pytest

from db import dispatch as rows
from ops.app import Hub
from ops.core.adapter import AdapterContext
from ops.core.channels import CopyQueue, SendCopy
from ops.dispatch.setup import add_channel, parts_of
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory
from tests.integration.dispatch_support import RecordingRadio, app_for, running
from tests.integration.units_support import add_case, add_unit, new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0
SLOW = 30.0
#: What "at once" means on a loaded two-core machine: far below the slow link's 30 s.
AT_ONCE = 5.0
#: A transaction or lock lasting this long (seconds) is held, not just doing its work.
HELD = 1.0


async def dispatch(hub: Hub, case_id: int, unit_id: str) -> str:
    detail = await parts_of(hub).service.dispatch(
        case_id=case_id, unit_ids=[unit_id], message="go", actor="tester", auto_escalate=False
    )
    return detail.order.id


async def wait_status(hub: Hub, order_id: str, status: str, within: float = WAIT) -> float:
    """Seconds until the order has ``status``."""
    started = time.monotonic()
    async with asyncio.timeout(within):
        while True:
            async with hub.pool.acquire() as conn:
                order = await rows.get_order(conn, order_id)
            assert order is not None
            if order.status == status:
                return time.monotonic() - started
            await asyncio.sleep(0.05)


async def copy_of(hub: Hub, order_id: str, channel: str) -> rows.OutboxRow:
    async with hub.pool.acquire() as conn:
        [copy] = [c for c in await rows.outbox_of(conn, order_id) if c.channel == channel]
    return copy


async def database_time(hub: Hub) -> dt.datetime:
    """The database server's clock now, the one ``pg_stat_activity`` is stamped with."""
    async with hub.pool.acquire() as conn:
        now: dt.datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def assert_database_not_held(hub: Hub, copy_id: int, on_the_link_at: dt.datetime) -> None:
    """While the slow send is pending, no transaction is held and the copy's row is free.

    Other work goes on meanwhile (timeouts, acknowledgements) in transactions of milliseconds:
    only one that lasts, or one open since before the copy went on the link (as a transaction
    around the send would be), counts.
    """
    async with hub.pool.acquire() as conn:
        for _ in range(10):
            held = await conn.fetch(
                """
                SELECT pid, state, query FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND (xact_start < now() - make_interval(secs => $1) OR xact_start < $2)
                """,
                HELD,
                on_the_link_at,
            )
            assert held == []
            await asyncio.sleep(0.05)
        async with asyncio.timeout(HELD):
            # NOWAIT fails at once while anyone holds the row; a holder for the whole send
            # would never let go within the bound.
            while True:
                try:
                    async with conn.transaction():
                        await conn.fetchval(
                            "SELECT id FROM dispatch_outbox WHERE id = $1 FOR UPDATE NOWAIT",
                            copy_id,
                        )
                    break
                except asyncpg.LockNotAvailableError:
                    await asyncio.sleep(0.02)
    # This test's own connection is back: the pool is not held either (the other work gives
    # its connections back within the bound; a holder for the whole send would not).
    await eventually(
        lambda: hub.pool.get_idle_size() >= hub.pool.get_size() - 1, timeout=HELD, interval=0.02
    )


async def test_a_slow_channel_holds_up_neither_other_copies_nor_timers_nor_the_database(
    make_hub_config: ConfigFactory,
) -> None:
    timeout = 1.0
    config = make_hub_config(
        dispatch={"mqtt_ack_timeout": 5.0, "radio_ack_timeout": timeout, "watch_interval": 0.1}
    )
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        spot = new_spot()
        stuck = await add_unit(hub, at=spot.near(0.5), channels=(("radio", "YB0SLW"),))
        behind = await add_unit(hub, at=spot.near(0.6), channels=(("radio", "YB0BHD"),))
        radio = RecordingRadio(seconds_per_copy=SLOW, slow_units=frozenset({stuck, behind}))
        add_channel(hub, radio)
        stuck_order = await dispatch(hub, await add_case(hub, spot), stuck)
        async with asyncio.timeout(WAIT):
            [on_the_link] = await radio.copies_of(stuck_order)
        started = time.monotonic()
        on_the_link_at = await database_time(hub)
        # A second radio copy waits behind the first, in the channel's own queue.
        behind_order = await dispatch(hub, await add_case(hub, spot), behind)

        # While the radio is stuck: copies of other orders go out over the MQTT app at once and
        # are acknowledged...
        apps = [await add_unit(hub, at=spot.near(1.0 + n)) for n in range(3)]
        for unit_id in apps:
            async with running(app_for(hub, unit_id)) as app:
                order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
                assert await wait_status(hub, order_id, "acknowledged") < AT_ONCE
                assert app.acted == [order_id]
        # ...the database is not held by the copy on the link...
        assert radio.on_air == []
        await assert_database_not_held(hub, on_the_link.copy_id, on_the_link_at)
        # ...and the ladder's timers fire on time: the stuck copy was never sent, so it times
        # out a radio timeout after it was queued and the order fails (no other channel).
        await wait_status(hub, stuck_order, "failed", within=AT_ONCE)
        await wait_status(hub, behind_order, "failed", within=AT_ONCE)
        assert time.monotonic() - started < SLOW / 2
        assert radio.on_air == []
        assert (await copy_of(hub, stuck_order, "radio")).state == "timed_out"
        # The copy that waited behind it was withdrawn from the channel's queue, never sent.
        queue = radio.queue
        assert queue is not None
        await eventually(lambda: queue.cancelled >= 1, timeout=WAIT)
        assert [c.order_id for c in radio.copies] == [stuck_order]
        await assert_database_not_held(hub, on_the_link.copy_id, on_the_link_at)


async def test_an_ack_on_one_channel_withdraws_the_copy_queued_on_another(
    make_hub_config: ConfigFactory,
) -> None:
    config = make_hub_config(
        dispatch={"mqtt_ack_timeout": 0.5, "radio_ack_timeout": 60.0, "watch_interval": 0.1}
    )
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        spot = new_spot()
        # A unit whose radio copy holds the link, so the next radio copy waits in the queue.
        blocker = await add_unit(hub, at=spot.near(0.2), channels=(("radio", "YB0BLK"),))
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("mqtt", "placeholder"), ("radio", "YB0TWO"))
        )
        async with hub.pool.acquire() as conn:
            await conn.execute(
                """UPDATE units SET channels = jsonb_build_array(
                       jsonb_build_object('channel', 'mqtt', 'address', id),
                       jsonb_build_object('channel', 'radio', 'address', 'YB0TWO'))
                   WHERE id = $1""",
                unit_id,
            )
        radio = RecordingRadio(seconds_per_copy=SLOW, slow_units=frozenset({blocker}))
        add_channel(hub, radio)
        blocker_order = await dispatch(hub, await add_case(hub, spot), blocker)
        async with asyncio.timeout(WAIT):
            await radio.copies_of(blocker_order)
        async with running(app_for(hub, unit_id, ack=False)) as app:
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            # The app got it but nobody answered: the ladder moved on to the radio, whose copy
            # now waits in the channel's queue (taken: its lease lasts to its deadline).
            async with asyncio.timeout(WAIT):
                while True:
                    async with hub.pool.acquire() as conn:
                        copies = await rows.outbox_of(conn, order_id)
                    if len(copies) == 2 and copies[1].lease_until is not None:
                        break
                    await asyncio.sleep(0.05)
            assert app.acted == [order_id]
            # ...and then the app's acknowledgement arrives after all.
            await app._publish(app.events_topic, {"type": "ack", "order": order_id})
            await wait_status(hub, order_id, "acknowledged")
        queue = radio.queue
        assert queue is not None
        await eventually(lambda: queue.cancelled >= 1, timeout=WAIT)
        detail = await parts_of(hub).service.detail(order_id)
        [assignment] = detail.assignments
        assert (assignment.status, assignment.ack_channel) == ("acknowledged", "mqtt")
        assert [(c.channel, c.state) for c in detail.copies] == [
            ("mqtt", "timed_out"),
            ("radio", "cancelled"),
        ]
        assert order_id not in [c.order_id for c in radio.copies]  # never handed to the link
        await parts_of(hub).service.cancel(blocker_order, actor="tester", reason="test over")


class ForgetfulRadio:
    """A radio that loses the first command for its unit (as if it crashed holding it)."""

    name = "test-forgetful-radio"
    channel = "radio"
    heartbeat_interval: float | None = None

    def __init__(self, unit_id: str) -> None:
        self.unit_id = unit_id
        self.commands: list[tuple[float, SendCopy]] = []

    async def run(self, ctx: AdapterContext) -> None:
        async with CopyQueue(ctx.bus, self.channel, source=self.name, report_taken=False) as q:
            ctx.heartbeat()
            while True:
                copy = await q.get()
                if copy.unit_id != self.unit_id:
                    q.sent(copy)  # another test's leftover: out of the way
                    continue
                self.commands.append((time.monotonic(), copy))
                if len(self.commands) > 1:
                    q.sent(copy)


async def test_a_copy_whose_lease_runs_out_is_handed_out_again(
    make_hub_config: ConfigFactory,
) -> None:
    lease = 1.0
    config = make_hub_config(
        dispatch={"radio_ack_timeout": 60.0, "claim_lease": lease, "watch_interval": 0.1}
    )
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        spot = new_spot()
        unit_id = await add_unit(hub, at=spot.near(0.5), channels=(("radio", "YB0LSE"),))
        radio = ForgetfulRadio(unit_id)
        add_channel(hub, radio)
        order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
        async with asyncio.timeout(WAIT):
            while True:
                copy = await copy_of(hub, order_id, "radio")
                if copy.state == "sent":
                    break
                await asyncio.sleep(0.05)
        events = [e.kind for e in (await parts_of(hub).service.detail(order_id)).events]
        await parts_of(hub).service.cancel(order_id, actor="tester", reason="test over")
    (lost_at, lost), (again_at, again) = radio.commands
    assert (again.copy_id, again.order_id, again.attempt) == (lost.copy_id, order_id, 1)
    assert again_at - lost_at >= lease * 0.9
    assert copy.attempts == 1
    assert events.count("sent") == 1


class RefusingRadio:
    """A radio that can never carry this unit's copies (say, a callsign its gateway refuses)."""

    name = "test-refusing-radio"
    channel = "radio"
    heartbeat_interval: float | None = None

    def __init__(self, unit_id: str) -> None:
        self.unit_id = unit_id

    async def run(self, ctx: AdapterContext) -> None:
        async with CopyQueue(ctx.bus, self.channel, source=self.name, report_taken=True) as q:
            ctx.heartbeat()
            while True:
                copy = await q.get()
                if copy.unit_id == self.unit_id:
                    q.failed(copy, "callsign refused by the gateway", retryable=False)
                else:
                    q.sent(copy)  # another test's leftover: out of the way


async def test_a_copy_that_can_never_go_moves_the_ladder_on_at_once(
    make_hub_config: ConfigFactory,
) -> None:
    config = make_hub_config(
        dispatch={"radio_ack_timeout": 60.0, "mqtt_ack_timeout": 5.0, "watch_interval": 0.1}
    )
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        spot = new_spot()
        unit_id = await add_unit(
            hub, at=spot.near(0.5), channels=(("radio", "YB0BAD"), ("mqtt", "placeholder"))
        )
        async with hub.pool.acquire() as conn:
            await conn.execute(
                """UPDATE units SET channels = jsonb_build_array(
                       jsonb_build_object('channel', 'radio', 'address', 'YB0BAD'),
                       jsonb_build_object('channel', 'mqtt', 'address', id))
                   WHERE id = $1""",
                unit_id,
            )
        add_channel(hub, RefusingRadio(unit_id))
        async with running(app_for(hub, unit_id)) as app:
            order_id = await dispatch(hub, await add_case(hub, spot), unit_id)
            # Far sooner than the radio's 60 s: the refusal is final, the app gets the order.
            assert await wait_status(hub, order_id, "acknowledged") < AT_ONCE
            assert app.acted == [order_id]
        detail = await parts_of(hub).service.detail(order_id)
    assert [(c.channel, c.state) for c in detail.copies] == [
        ("radio", "timed_out"),
        ("mqtt", "acknowledged"),
    ]
    assert detail.copies[0].last_error == "callsign refused by the gateway"
    assert detail.copies[0].attempts == 0  # it never went on the air
    steps = [(e.kind, e.channel, e.detail) for e in detail.events]
    assert ("send_failed", "radio", "callsign refused by the gateway") in steps
    assert ("timed_out", "radio", "callsign refused by the gateway") in steps
