"""The unit vocabulary: kinds, statuses, channels, and the snapshot the bus carries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

from ops.units.events import UnitSnapshot

if TYPE_CHECKING:
    from db.units import UnitRow

Kind = Literal[
    "volunteer", "social_worker", "companion", "fire", "public_order", "medic", "logistics"
]
Status = Literal["available", "dispatched", "en_route", "on_scene", "returning", "out_of_service"]
#: Channels an order can leave by; each one's adapter plugs in with ops.dispatch.setup.add_channel.
Channel = Literal["mqtt", "radio", "satellite"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
STATUSES: Final[tuple[str, ...]] = get_args(Status)
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
CALLSIGN_PATTERN: Final = r"^[A-Za-z0-9/-]{1,16}$"
SKILL_PATTERN: Final = r"^[a-z0-9_]{1,32}$"
#: Free text: anything but NUL, which PostgreSQL cannot store in text.
TEXT_PATTERN: Final = r"^[^\x00]*$"
#: Path segments under /api/v1/units that are routes, not unit ids.
RESERVED_IDS: Final = frozenset({"recommend", "positions"})


def snapshot(row: UnitRow) -> UnitSnapshot:
    """The bus view of a unit row."""
    return UnitSnapshot(
        id=row.id,
        callsign=row.callsign,
        name=row.name,
        kind=row.kind,
        skills=row.skills,
        status=row.status,
        status_reason=row.status_reason,
        on_duty=row.on_duty,
        lat=row.lat,
        lon=row.lon,
        position_at=row.position_at,
        position_source=row.position_source,
        channels=tuple(channel for channel, _ in row.channels),
        shift=row.shift,
    )
