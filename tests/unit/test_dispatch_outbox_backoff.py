"""Dispatch's loops treat a database gone mid-batch as a backoff, not a crash."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.channels import send_topic
from ops.core.errors import AdapterNotReady
from ops.dispatch.relay import OutboxRelay


class _GonePool:
    """A pool whose server went away: every acquire fails the way asyncpg's does then."""

    def acquire(self) -> Any:
        raise asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        )


async def test_a_database_gone_mid_batch_is_a_backoff() -> None:
    bus = Bus()
    relay = OutboxRelay(cast("Any", _GonePool()), bus, lease=5.0)
    relay.add_channel("radio")
    async with bus.subscribe(send_topic("radio"), name="radio"):  # the radio listens
        with pytest.raises(AdapterNotReady, match="database unreachable"):
            await relay.run(AdapterContext(relay.name, bus))
