"""Dispatch recovering from failures, against the real database and broker: an event the
inbound worker failed on is handled after its restart, a copy re-sent after a hub restart gets
its full timeout again, and a timeout never overwrites a copy a channel just reported sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest

from db import dispatch as rows
from ops.app import Hub
from ops.core.events import ADAPTER_STATUS, AdapterState
from ops.dispatch.events import ORDER_CHANGED
from ops.dispatch.setup import add_channel, parts_of
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.integration.dispatch_support import RecordingRadio
from tests.integration.units_support import add_case, add_unit, new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0


@contextlib.asynccontextmanager
async def failing_once(hub: Hub, unit_id: str, kind: str) -> AsyncIterator[None]:
    """The database refuses, once, to record a ``kind`` step of this unit in an order."""
    name = unique_name("fail").replace("-", "_").lower()
    async with hub.pool.acquire() as conn:
        await conn.execute(f"CREATE SEQUENCE {name}_seq")
        await conn.execute(
            f"""
            CREATE FUNCTION {name}_fn() RETURNS trigger LANGUAGE plpgsql AS $body$
            BEGIN
                IF NEW.unit_id = '{unit_id}' AND NEW.kind = '{kind}' THEN
                    IF nextval('{name}_seq') = 1 THEN
                        RAISE EXCEPTION 'refused once for the test';
                    END IF;
                END IF;
                RETURN NEW;
            END
            $body$
            """
        )
        await conn.execute(
            f"CREATE TRIGGER {name} BEFORE INSERT ON dispatch_events "
            f"FOR EACH ROW EXECUTE FUNCTION {name}_fn()"
        )
    try:
        yield
    finally:
        async with hub.pool.acquire() as conn:
            await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON dispatch_events")
            await conn.execute(f"DROP FUNCTION IF EXISTS {name}_fn()")
            await conn.execute(f"DROP SEQUENCE IF EXISTS {name}_seq")


@pytest.mark.allow_error_log(match=["adapter dispatch-inbound crashed"])
async def test_an_ack_queued_when_the_event_worker_failed_is_handled_after_its_restart(
    hub: Hub,
) -> None:
    spot = new_spot()
    case_id = await add_case(hub, spot)
    unit_id = await add_unit(hub, at=spot.near(0.5))
    service = parts_of(hub).service
    inbound = parts_of(hub).inbound
    detail = await service.dispatch(
        case_id=case_id, unit_ids=[unit_id], message="go", actor="tester", auto_escalate=False
    )
    order_id = detail.order.id
    host, port = hub.config.mqtt.host_port
    async with (
        failing_once(hub, unit_id, "acknowledged"),
        hub.bus.subscribe(ADAPTER_STATUS, name="statuses", replay_state=False) as statuses,
        hub.bus.subscribe(ORDER_CHANGED, name="orders", replay_state=False) as orders,
        aiomqtt.Client(host, port, identifier=unique_name("unitapp")) as app,
    ):
        # The unit's one and only acknowledgement: the database refuses it the first time.
        await app.publish(
            hub.mqtt.topic("units", unit_id, "events"),
            json.dumps({"type": "ack", "order": order_id}),
            qos=1,
        )
        async with asyncio.timeout(WAIT):
            while True:
                status = (await statuses.get()).payload
                if status.name == inbound.name and status.state is AdapterState.BACKOFF:
                    break
            assert "refused once" in status.detail
            # Restarted, the worker takes the acknowledgement still queued; nothing else arrives.
            while True:
                change = (await orders.get()).payload
                if change.order_id == order_id and change.kind == "acknowledged":
                    break
    done = await service.detail(order_id)
    assert done.order.status == "acknowledged"
    assert [(a.unit_id, a.status, a.ack_channel) for a in done.assignments] == [
        (unit_id, "acknowledged", "mqtt")
    ]
    assert inbound.handled >= 1
    assert not inbound.rejected


async def test_a_copy_resent_after_a_restart_gets_its_full_timeout(
    make_hub_config: ConfigFactory,
) -> None:
    # The first hub's watch looks once at start only, so nothing times out before it stops.
    first = make_hub_config(dispatch={"watch_interval": 600})
    timeout = 2.0
    second = make_hub_config(dispatch={"radio_ack_timeout": timeout, "watch_interval": 0.1})
    async with Hub(first, restart_policy=TEST_RESTART_POLICY) as hub:
        add_channel(hub, RecordingRadio())
        spot = new_spot()
        case_id = await add_case(hub, spot)
        unit_id = await add_unit(hub, at=spot.near(0.5), channels=(("radio", "YB0RST"),))
        async with hub.bus.subscribe(ORDER_CHANGED, name="orders", replay_state=False) as seen:
            detail = await parts_of(hub).service.dispatch(
                case_id=case_id,
                unit_ids=[unit_id],
                message="go",
                actor="tester",
                auto_escalate=False,
            )
            order_id = detail.order.id
            async with asyncio.timeout(WAIT):
                while True:
                    change = (await seen.get()).payload
                    if change.order_id == order_id and change.kind == "sent":
                        break
        # The hub then stays down for longer than the channel's timeout.
        async with hub.pool.acquire() as conn:
            await conn.execute(
                "UPDATE dispatch_outbox SET deadline = now() - interval '1 hour' "
                "WHERE order_id = $1",
                order_id,
            )
    async with Hub(second, restart_policy=TEST_RESTART_POLICY) as hub:
        # The watch has looked once (it reports running after its first check)...
        async with (
            hub.bus.subscribe(ADAPTER_STATUS, name="statuses") as statuses,
            asyncio.timeout(WAIT),
        ):
            while True:
                status = (await statuses.get()).payload
                if status.name == "dispatch-watch" and status.state is AdapterState.RUNNING:
                    break
        # ...before the radio comes up (as a gateway's own setup would, a moment later).
        radio = RecordingRadio()
        add_channel(hub, radio)
        async with asyncio.timeout(WAIT):
            [again] = await radio.copies_of(order_id)
            assert again.attempt == 2

        async def timed_out() -> Any:
            async with hub.pool.acquire() as conn:
                [copy] = await rows.outbox_of(conn, order_id)
            return copy if copy.state == "timed_out" else None

        copy = await eventually(timed_out, timeout=WAIT, interval=0.1)
        events = [e.kind for e in (await parts_of(hub).service.detail(order_id)).events]
    # Sent again after the restart, and only then given up on: a full timeout after the resend.
    assert copy.attempts == 2
    assert copy.sent_at is not None
    assert copy.closed_at is not None
    assert copy.closed_at - copy.sent_at >= timedelta(seconds=timeout - 0.1)
    assert events[events.index("requeued") :] == [
        "requeued",
        "sent",
        "timed_out",
        "exhausted",
        "alarm",
        "failed",
    ]


async def test_a_timeout_does_not_overwrite_a_copy_just_sent(
    make_hub_config: ConfigFactory,
) -> None:
    # The hub's own watch looks once at start; the test runs the check itself.
    config = make_hub_config(dispatch={"watch_interval": 600})
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        spot = new_spot()
        case_id = await add_case(hub, spot)
        # Radio has no channel in this hub: the copy waits queued until the test "sends" it.
        unit_id = await add_unit(hub, at=spot.near(0.5), channels=(("radio", "YB0GRD"),))
        service = parts_of(hub).service
        detail = await service.dispatch(
            case_id=case_id, unit_ids=[unit_id], message="go", actor="tester", auto_escalate=False
        )
        order_id = detail.order.id
        [copy] = detail.copies
        ladder = parts_of(hub).ladder
        async with hub.pool.acquire() as conn:
            await conn.execute(
                "UPDATE dispatch_outbox SET deadline = now() - interval '1 second' WHERE id = $1",
                copy.id,
            )
        fresh = datetime.now(UTC) + timedelta(minutes=2)
        async with hub.pool.acquire() as sender, hub.pool.acquire() as probe:
            # The radio reported the overdue copy sent, and dispatch is recording it...
            claim = sender.transaction()
            await claim.start()
            await sender.fetchval(
                "SELECT id FROM dispatch_outbox WHERE id = $1 FOR UPDATE", copy.id
            )
            # ...while the watch, working from its snapshot, finds the copy overdue and waits.
            check = asyncio.create_task(ladder.check_timeouts())
            blocker = sender.get_server_pid()

            async def waits_on_the_lock() -> Any:
                # Nothing to await here: the database is asked who waits on whom.
                return await probe.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                    blocker,
                )

            await eventually(waits_on_the_lock, timeout=WAIT, interval=0.02)
            assert await rows.mark_sent(sender, copy.id, 1, fresh) is not None
            await claim.commit()
            assert await check == 0
        after = await service.detail(order_id)
        # Leave no live copy behind for another test's radio.
        await service.cancel(order_id, actor="tester", reason="test over")
    [copy] = after.copies
    assert (copy.state, copy.attempts, copy.deadline) == ("sent", 1, fresh)
    assert copy.closed_at is None
    assert [(a.status, a.unit_id) for a in after.assignments] == [("pending", unit_id)]
    assert after.order.status == "open"
    assert "timed_out" not in [e.kind for e in after.events]
