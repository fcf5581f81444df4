"""Audit entries written in the transaction of the change they record, announced after its commit.

A change and its entry commit or roll back together, so the trail never names a change that did
not happen nor misses one that did. The bus copy (``hub.audit.recorded``) leaves ``detail`` out
(it may hold client addresses: every live client, whatever its role, sees that topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from db import audit
from ops.core.events import AUDIT_RECORDED, AuditRecorded

if TYPE_CHECKING:
    from collections.abc import Iterable

    from db.pool import Connection
    from ops.core.bus import Bus


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry written in a transaction, to announce once that transaction commits."""

    id: int
    recorded: AuditRecorded


async def write(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
    detail: Any = None,
) -> Entry:
    """Append an entry on ``conn``, inside the caller's transaction."""
    entry_id = await audit.append(
        conn, actor=actor, action=action, target=target, before=before, after=after, detail=detail
    )
    return Entry(entry_id, AuditRecorded(actor=actor, action=action, target=target))


def announce(bus: Bus, entries: Entry | Iterable[Entry], *, source: str) -> None:
    """Publish committed entries on the bus (never before their transaction commits)."""
    for entry in [entries] if isinstance(entries, Entry) else entries:
        bus.publish(AUDIT_RECORDED, entry.recorded, source=source, key=str(entry.id))
