"""The SLA watch: marks open cases whose clock ran out and announces ``case.sla_breached``.

It runs as a supervised adapter, so a database outage shows as its backoff and heals by itself.
Each breach is written (``sla_breached_at`` and a history entry) before it is announced, and
only once per clock: reopening starts a fresh clock.
"""

from __future__ import annotations

import asyncio
import logging

from db import cases as case_rows
from db.pool import Pool
from ops.cases.intake import SOURCE
from ops.cases.model import snapshot
from ops.core.adapter import AdapterContext
from ops.core.events import CASE_SLA_BREACHED

_LOGGER = logging.getLogger(__name__)


class SlaWatcher:
    """Checks every ``interval`` seconds for open cases past their SLA due time."""

    name = "cases.sla"

    def __init__(self, pool: Pool, interval: float) -> None:
        self._pool = pool
        self._interval = interval
        self.heartbeat_interval: float | None = interval

    async def run(self, ctx: AdapterContext) -> None:
        """Check, announce, sleep; forever."""
        while True:
            await self.check(ctx)
            ctx.heartbeat()
            await asyncio.sleep(self._interval)

    async def check(self, ctx: AdapterContext) -> int:
        """One pass; return how many cases were newly breached."""
        async with self._pool.acquire() as conn, conn.transaction():
            breached = await case_rows.breach_due(conn)
            for row in breached:
                await case_rows.append_history(
                    conn,
                    row.id,
                    actor="hub",
                    action="sla_breached",
                    before=None,
                    after={"sla_due_at": row.sla_due_at.isoformat(), "status": row.status},
                )
        for row in breached:
            _LOGGER.warning("case %s breached its SLA (due %s)", row.number, row.sla_due_at)
            ctx.bus.publish(CASE_SLA_BREACHED, snapshot(row), source=SOURCE, key=str(row.id))
        return len(breached)
