"""The room's side of radio without a database: bulletin groups, CSV cells, log filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from db.radio import COLUMNS, LogRow
from ops.radio.commands import KIND_GROUPS, RadioRefused, group_code
from ops.units.model import KINDS
from ops.web.radio import LogQuery, csv_cells


def test_every_unit_kind_has_a_bulletin_group_aprs_accepts() -> None:
    assert set(KIND_GROUPS) == set(KINDS)
    for group in KIND_GROUPS.values():
        assert re.fullmatch(r"[A-Z0-9]{1,5}", group)
    assert len(set(KIND_GROUPS.values())) == len(KIND_GROUPS)


@pytest.mark.parametrize(("given", "code"), [("medic", "MEDIC"), ("jkt1", "JKT1"), ("A", "A")])
def test_a_group_is_a_kind_or_a_code(given: str, code: str) -> None:
    assert group_code(given) == code


@pytest.mark.parametrize("given", ["", "toolong", "a-b", "ab c", "médic"])
def test_a_bad_group_is_refused_naming_the_field(given: str) -> None:
    with pytest.raises(RadioRefused) as refused:
        group_code(given)
    assert (refused.value.status, refused.value.field) == (400, "group")


def _row(**fields: object) -> LogRow:
    values: dict[str, object] = dict.fromkeys(COLUMNS)
    values.update(
        id=1,
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        gateway="north",
        direction="in",
        kind="message",
        callsign="YB0ABC-7",
        text="",
        tnc2="",
    )
    values.update(fields)
    return LogRow(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+62 812", "'+62 812"),
        ("-6.2,106.8", "'-6.2,106.8"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("on scene", "on scene"),
        ("", ""),
    ],
)
def test_csv_cells_defuse_formulas(text: str, cell: str) -> None:
    cells = csv_cells(_row(text=text, number="12", order_id=None))
    assert cells[COLUMNS.index("text")] == cell
    assert cells[COLUMNS.index("at")] == "2026-01-02T03:04:05+00:00"
    assert cells[COLUMNS.index("number")] == "12"
    assert cells[COLUMNS.index("order_id")] == ""
    assert len(cells) == len(COLUMNS)


def test_log_query_takes_the_filters_and_refuses_naive_times() -> None:
    query = LogQuery.model_validate(
        {"callsign": "yb0abc-7", "kind": "ack", "since": "2026-01-01T00:00:00+07:00", "limit": "5"}
    )
    where = query.to_filter()
    assert (where.callsign, where.kind, query.limit) == ("yb0abc-7", "ack", 5)
    with pytest.raises(ValidationError):
        LogQuery.model_validate({"since": "2026-01-01T00:00:00"})
    with pytest.raises(ValidationError):
        LogQuery.model_validate({"kind": "telepathy"})
