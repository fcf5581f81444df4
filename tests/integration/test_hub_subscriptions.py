"""A started hub hears the field at once, even on a broker slow to grant subscriptions.

amqtt (the embedded broker) grants a SUBSCRIBE tens of milliseconds after it arrives, more on a
loaded machine; a message published meanwhile reaches nobody. The hub therefore says it started
only once its link has every domain's subscription granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from devices.mqtt import broker as broker_module
from devices.mqtt.broker import EmbeddedBroker
from ops.app import Hub
from tests.fixtures.broker import HOST, free_port
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.integration.units_support import add_unit, new_spot
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

#: How long the slow broker sits on each SUBSCRIBE before granting it.
SUBSCRIBE_DELAY = 0.3


class _SlowSubscribeBroker(broker_module._Broker):  # type: ignore[misc,name-defined]
    async def _handle_subscription(self, *args: Any) -> None:
        await asyncio.sleep(SUBSCRIBE_DELAY)
        await super()._handle_subscription(*args)


@contextlib.asynccontextmanager
async def slow_broker(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EmbeddedBroker]:
    """An embedded broker that grants every subscription ``SUBSCRIBE_DELAY`` late."""
    broker = EmbeddedBroker(HOST, free_port())
    with monkeypatch.context() as patch:
        patch.setattr(broker_module, "_Broker", _SlowSubscribeBroker)
        await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def test_text_sent_the_moment_the_hub_started_opens_its_case(
    make_hub_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with slow_broker(monkeypatch) as broker:
        config = make_hub_config(mqtt={"url": f"mqtt://{broker.host}:{broker.port}"})
        async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
            assert hub.mqtt.subscribed
            unit_id = await add_unit(hub, kind="volunteer", at=new_spot().near(0.0))
            text = f"Pohon tumbang {unique_name('km')}"
            async with aiomqtt.Client(
                broker.host, broker.port, identifier=f"field-{secrets.token_hex(4)}"
            ) as field:
                await field.publish(
                    hub.mqtt.topic("units", unit_id, "events"),
                    json.dumps({"type": "text", "text": text, "id": "t-1"}),
                    qos=1,
                )

            async def case_opened() -> bool:
                async with hub.pool.acquire() as conn:
                    found = await conn.fetchval(
                        "SELECT count(*) FROM cases WHERE description LIKE '%' || $1 || '%'", text
                    )
                return bool(found)

            await eventually(case_opened, timeout=10.0)
