"""Pure rules of the case domain: life cycle, SLA maths, codes, and the channel decoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.categories import RuleRow
from ops.cases import codes
from ops.cases.errors import InvalidTransition
from ops.cases.lifecycle import ALLOWED, check_transition, is_bounce
from ops.cases.model import STATUSES, title_from
from ops.cases.routing import DEFAULT_SLA_MINUTES, sla_due
from ops.intake.email import MailRefused, parse_mail
from ops.intake.panic import PanicRefused, parse_press

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def _rule() -> RuleRow:
    return RuleRow("fire", "", "damkar", 15, 60, 240, 1440, T0)


def test_the_life_cycle_is_the_documented_one() -> None:
    assert set(ALLOWED) == set(STATUSES)
    documented = {
        "new": {"triaged", "assigned", "rejected"},
        "triaged": {"assigned", "rejected"},
        "assigned": {"in_progress", "resolved", "triaged"},
        "in_progress": {"resolved", "triaged"},
        "resolved": {"closed", "reopened"},
        "closed": {"reopened"},
        "rejected": {"closed", "reopened"},
        "reopened": {"triaged", "assigned", "rejected"},
    }
    assert documented == ALLOWED
    assert all(target in STATUSES for targets in ALLOWED.values() for target in targets)


@given(st.sampled_from(STATUSES), st.sampled_from(STATUSES))
def test_a_refusal_names_both_states(current: str, target: str) -> None:
    if target in ALLOWED[current]:
        check_transition(current, target, reason="because", agency="bpbd")
        return
    with pytest.raises(InvalidTransition) as refused:
        check_transition(current, target, reason="because", agency="bpbd")
    assert current in str(refused.value)
    assert target in str(refused.value)
    assert (refused.value.current, refused.value.target) == (current, target)


@pytest.mark.parametrize(
    ("current", "target", "reason", "agency", "missing"),
    [
        ("new", "rejected", None, None, "reason"),
        ("closed", "reopened", "  ", None, "reason"),
        ("assigned", "triaged", None, "dinsos", "reason"),
        ("triaged", "assigned", None, None, "agency"),
    ],
)
def test_steps_that_need_more(
    current: str, target: str, reason: str | None, agency: str | None, missing: str
) -> None:
    with pytest.raises(InvalidTransition, match=missing):
        check_transition(current, target, reason=reason, agency=agency)


def test_a_bounce_is_the_owner_handing_back() -> None:
    assert is_bounce("assigned", "triaged")
    assert is_bounce("in_progress", "triaged")
    assert not is_bounce("reopened", "triaged")
    assert not is_bounce("new", "triaged")


def test_sla_due_times() -> None:
    assert sla_due(T0, _rule(), "critical") == T0 + timedelta(minutes=15)
    assert sla_due(T0, _rule(), "low") == T0 + timedelta(days=1)
    assert sla_due(T0, None, "medium") == T0 + timedelta(minutes=DEFAULT_SLA_MINUTES["medium"])


@given(st.booleans())
def test_codes_round_trip_and_forgive_typing(secret: bool) -> None:
    code = codes.new_code(secret=secret)
    assert codes.normalize(code) == code
    assert codes.normalize(" " + code.lower() + " ") == code
    assert codes.digest(code) == codes.digest(codes.normalize(code.lower()) or "")
    assert len(codes.digest(code)) == 32
    assert code.startswith("WB-" if secret else "LP-")


@pytest.mark.parametrize("code", ["", "LP-", "LP-O0O0O0O0O0", "XX-ABCDEFGHJK", "WB-ABC", "LP-A"])
def test_malformed_codes(code: str) -> None:
    assert codes.normalize(code) is None


def test_titles_from_descriptions() -> None:
    assert title_from("\n\n  Banjir setinggi lutut \nsejak pagi") == "Banjir setinggi lutut"
    assert len(title_from("x" * 500)) == 200
    assert title_from("   ") == ""


def test_a_press_decodes() -> None:
    press = parse_press("posko/panic/btn-1", json.dumps({"lat": 1, "lon": 2, "ts": 17}).encode())
    assert (press.device_id, press.lat, press.lon, press.press_id) == ("btn-1", 1.0, 2.0, "17")
    assert parse_press("p/panic/x", b"  ").lat is None


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("p/panic/bad id", b"", "device id"),
        ("p/panic/x", b"nope", "not JSON"),
        ("p/panic/x", b"3", "object"),
        ("p/panic/x", b'{"lat": true, "lon": 1}', "number"),
        ("p/panic/x", b'{"lat": NaN, "lon": 1}', "number"),
        ("p/panic/x", b'{"lat": 1}', "both"),
        ("p/panic/x", b'{"lon": 181, "lat": 0}', "between"),
        ("p/panic/x", b'{"lat": 1' + b"0" * 400 + b', "lon": 0}', "between"),
        ("p/panic/x", b'{"lat": 0, "lon": -1' + b"0" * 400 + b"}", "between"),
        ("p/panic/x", b'{"text": "tolong\\u0000"}', "NUL"),
    ],
)
def test_a_bad_press_says_why(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(PanicRefused, match=reason):
        parse_press(topic, payload)


def test_a_press_without_id_or_ts_is_keyed_by_device_and_receive_minute() -> None:
    first = parse_press("p/panic/btn-1", b"", received=1_800_000_000.0)
    redelivered = parse_press("p/panic/btn-1", b"{}", received=1_800_000_030.0)
    later = parse_press("p/panic/btn-1", b"", received=1_800_000_090.0)
    assert first.press_id == redelivered.press_id == "rx-30000000"
    assert later.press_id != first.press_id
    assert parse_press("p/panic/x", b'{"ts": 5}', received=0.0).press_id == "5"


def test_a_mail_with_nul_keeps_its_text_without_them() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: Banjir\x00 besar\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nAir\x00 naik\r\n"
    )
    mail = parse_mail(raw, None)
    assert (mail.subject, mail.text) == ("Banjir besar", "Air naik")


def test_a_mail_decodes_with_its_tag_and_attachments() -> None:
    message = EmailMessage()
    message["From"] = '"Rina" <rina@example.org>'
    message["Subject"] = "[Medical]  Warga pingsan"
    message["Message-ID"] = "<m1@example.org>"
    message.set_content("Di balai desa.")
    message.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="../../x.png")
    mail = parse_mail(message.as_bytes(), None)
    assert (mail.tag, mail.subject, mail.text) == ("medical", "Warga pingsan", "Di balai desa.")
    assert (mail.sender_name, mail.sender_address) == ("Rina", "rina@example.org")
    [attachment] = mail.attachments
    assert attachment["filename"] == ".._.._x.png"
    assert attachment["size"] == 7
    assert "content" not in attachment


def test_a_mail_without_a_from_header_uses_the_envelope() -> None:
    mail = parse_mail(b"Subject: hi\r\n\r\ntext\r\n", "env@example.org")
    assert mail.sender_address == "env@example.org"
    with pytest.raises(MailRefused, match="From"):
        parse_mail(b"Subject: hi\r\n\r\ntext\r\n", None)
