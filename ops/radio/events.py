"""What the radio domain announces: log lines once they are stored."""

from __future__ import annotations

from dataclasses import dataclass

from db.radio import LogRow
from ops.core.events import Topic


@dataclass(frozen=True, slots=True)
class RadioLogged:
    """Lines of the radio log, committed, with their ids (one batch of the writer)."""

    rows: tuple[LogRow, ...]


RADIO_LOGGED: Topic[RadioLogged] = Topic("radio.logged")
