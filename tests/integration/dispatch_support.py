"""Helpers of the dispatch tests: a second channel that really takes copies."""

from __future__ import annotations

import asyncio

from ops.dispatch.channels import OrderCopy


class RecordingRadio:
    """A working radio channel: takes every copy (the outbox is shared, so others' too)."""

    channel = "radio"

    def __init__(self) -> None:
        self.copies: list[OrderCopy] = []
        self._took = asyncio.Condition()

    async def send(self, copy: OrderCopy) -> None:
        """Take the copy at once."""
        async with self._took:
            self.copies.append(copy)
            self._took.notify_all()

    async def copies_of(self, order_id: str, count: int = 1) -> list[OrderCopy]:
        """The copies of an order taken so far, once there are ``count``."""

        def enough() -> bool:
            return sum(c.order_id == order_id for c in self.copies) >= count

        async with self._took:
            await self._took.wait_for(enough)
            return [c for c in self.copies if c.order_id == order_id]
