"""A channel's outbox worker treats a database gone mid-batch as a backoff, not a crash."""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import pytest

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.errors import AdapterNotReady
from ops.dispatch.channels import OutboxSender


class _GonePool:
    """A pool whose server went away: every acquire fails the way asyncpg's does then."""

    def acquire(self) -> Any:
        raise asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        )


class _Radio:
    channel = "radio"

    async def send(self, _copy: Any) -> None:
        raise AssertionError("nothing can be claimed without a database")


async def test_a_database_gone_mid_batch_is_a_backoff() -> None:
    outbox = OutboxSender(cast("Any", _GonePool()), Bus(), _Radio(), timeout=5.0)
    with pytest.raises(AdapterNotReady, match="database unreachable"):
        await outbox.run(AdapterContext(outbox.name, Bus()))
    assert outbox.sent == 0
