"""APRS information fields: the spec's examples, every format both ways, and what is refused."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from radio.aprs import (
    MESSAGE_LIMIT,
    MIC_E_STATUSES,
    Ack,
    AprsError,
    Message,
    Other,
    Position,
    Reject,
    Status,
    ThirdParty,
    decode,
    decode_info,
    encode_ack,
    encode_message,
    encode_mic_e,
    encode_position,
    encode_reject,
    encode_status,
    split_text,
)
from radio.ax25 import Address, Frame, to_tnc2

NOW = datetime(2026, 12, 9, 23, 50, tzinfo=UTC)
FEET = 0.3048


def reason_of(info: bytes, destination: str = "") -> str:
    with pytest.raises(AprsError) as caught:
        decode_info(info, destination, now=NOW)
    return caught.value.reason


def close(a: float, b: float, tolerance: float = 1e-9) -> bool:
    return abs(a - b) <= tolerance


# --- positions: the spec's examples -----------------------------------------------------------


def test_uncompressed_without_timestamp() -> None:
    position = decode_info(b"!4903.50N/07201.75W-Test 001234", now=NOW)
    assert isinstance(position, Position)
    assert close(position.lat, 49 + 3.5 / 60)
    assert close(position.lon, -(72 + 1.75 / 60))
    assert (position.symbol_table, position.symbol) == ("/", "-")
    assert position.comment == "Test 001234"
    assert position.messaging is False
    assert position.timestamp is None
    assert position.format == "uncompressed"
    assert decode_info(b"=4903.50S\\07201.75E-", now=NOW) == Position(
        -(49 + 3.5 / 60), 72 + 1.75 / 60, "\\", "-", messaging=True
    )


def test_uncompressed_with_timestamps() -> None:
    dhm = decode_info(b"@092345z4903.50N/07201.75W>Test", now=NOW)
    assert isinstance(dhm, Position)
    assert dhm.timestamp == datetime(2026, 12, 9, 23, 45, tzinfo=UTC)
    assert dhm.messaging is True
    local = decode_info(b"/092345/4903.50N/07201.75W>", now=NOW)
    assert isinstance(local, Position)
    assert local.timestamp == datetime(2026, 12, 9, 23, 45, tzinfo=UTC)
    assert local.messaging is False
    hms = decode_info(b"/234517h4903.50N/07201.75W>", now=NOW)
    assert isinstance(hms, Position)
    assert hms.timestamp == datetime(2026, 12, 9, 23, 45, 17, tzinfo=UTC)


def test_timestamp_is_placed_in_the_nearest_month_or_day() -> None:
    # Day 30 seen on the 1st of December is November's 30th.
    early = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    position = decode_info(b"@302355z4903.50N/07201.75W>", now=early)
    assert isinstance(position, Position)
    assert position.timestamp == datetime(2026, 11, 30, 23, 55, tzinfo=UTC)
    # Just past midnight, 23:59:00 is yesterday's.
    hms = decode_info(b"/235900h4903.50N/07201.75W>", now=early)
    assert isinstance(hms, Position)
    assert hms.timestamp == datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def test_course_speed_and_altitude() -> None:
    position = decode_info(b"!4903.50N/07201.75W>088/036/A=001234 on patrol", now=NOW)
    assert isinstance(position, Position)
    assert (position.course, position.speed) == (88, 36.0)
    assert position.altitude is not None
    assert close(position.altitude, 1234 * FEET)
    assert position.comment == " on patrol"
    unknown = decode_info(b"!4903.50N/07201.75W>000/000", now=NOW)
    assert isinstance(unknown, Position)
    assert (unknown.course, unknown.speed) == (None, 0.0)
    north = decode_info(b"!4903.50N/07201.75W>360/010", now=NOW)
    assert isinstance(north, Position)
    assert north.course == 360
    below = decode_info(b"!4903.50N/07201.75W>/A=-00012", now=NOW)
    assert isinstance(below, Position)
    assert below.altitude is not None
    assert close(below.altitude, -12 * FEET)


def test_ambiguity_gives_the_centre_of_the_box() -> None:
    for info, ambiguity, lat, lon in [
        (b"!4903.5 N/07201.7 W-", 1, 49 + 3.55 / 60, -(72 + 1.75 / 60)),
        (b"!4903.  N/07201.  W-", 2, 49 + 3.5 / 60, -(72 + 1.5 / 60)),
        (b"!490 .  N/0720 .  W-", 3, 49 + 5 / 60, -(72 + 5 / 60)),
        (b"!49  .  N/072  .  W-", 4, 49.5, -72.5),
        # The longitude's blanks follow the latitude's, whatever digits it carries.
        (b"!49  .  N/07201.75W-", 4, 49.5, -72.5),
    ]:
        position = decode_info(info, now=NOW)
        assert isinstance(position, Position)
        assert position.ambiguity == ambiguity
        assert close(position.lat, lat), info
        assert close(position.lon, lon), info


def test_compressed_examples() -> None:
    position = decode_info(b"=/5L!!<*e7>7P[", now=NOW)
    assert isinstance(position, Position)
    assert position.format == "compressed"
    assert close(position.lat, 49.5, 1e-5)
    assert close(position.lon, -72.75, 1e-5)
    assert position.course == 88
    assert position.speed is not None
    assert close(position.speed, 36.2, 0.05)
    assert position.messaging is True
    altitude = decode_info(b"!/5L!!<*e7OS]S", now=NOW)
    assert isinstance(altitude, Position)
    assert altitude.altitude is not None
    assert close(altitude.altitude / FEET, 10004, 1)
    assert altitude.course is None
    # '{' in the course byte is a radio range, not a course.
    ranged = decode_info(b"@092345z/5L!!<*e7>{?!", now=NOW)
    assert isinstance(ranged, Position)
    assert ranged.timestamp == datetime(2026, 12, 9, 23, 45, tzinfo=UTC)
    assert (ranged.course, ranged.speed) == (None, None)
    # Overlay digits travel as a-j.
    overlay = decode_info(b"!c5L!!<*e7# sT", now=NOW)
    assert isinstance(overlay, Position)
    assert overlay.symbol_table == "2"


def test_mic_e_example() -> None:
    frame = Frame(Address("S32U6T"), Address("YB0ABC", 9), (), b'`(_fn"Oj/')
    position = decode(frame, now=NOW)
    assert isinstance(position, Position)
    assert position.format == "mic-e"
    assert close(position.lat, 33 + 25.64 / 60)
    assert close(position.lon, -(12 + 7.74 / 60))
    assert (position.speed, position.course) == (20.0, 251)
    assert (position.symbol_table, position.symbol) == ("/", "j")
    assert position.mic_e_status == "Returning"


def test_mic_e_altitude_status_and_comment() -> None:
    destination, info = encode_mic_e(
        Position(-6.2, 106.8, "/", "[", "on foot", course=90, speed=3, altitude=25),
        status="In Service",
    )
    assert destination.ssid == 0
    position = decode_info(info, str(destination), now=NOW)
    assert isinstance(position, Position)
    assert position.altitude == 25.0
    assert position.comment == "on foot"
    assert position.mic_e_status == "In Service"
    # The old-data type and a Kenwood type code before the altitude.
    old = decode_info(b"'" + info[1:9] + b']"4)}rest', str(destination), now=NOW)
    assert isinstance(old, Position)
    assert old.altitude == float((1 * 91 + 19) * 91 + 8 - 10000)
    assert old.comment == "rest"


def test_mic_e_message_codes() -> None:
    for name, bits in MIC_E_STATUSES.items():
        destination, info = encode_mic_e(Position(10, 20), status=name)
        position = decode_info(info, str(destination), now=NOW)
        assert isinstance(position, Position)
        assert position.mic_e_status == name, bits
    # Custom bits (A-K) and a mixture of custom and standard.
    _, info = encode_mic_e(Position(10, 20))
    assert decode_info(info, "AB0P0P", now=NOW) == decode_info(info, "AB0P0P", now=NOW)
    custom = decode_info(info, "AB0P0P", now=NOW)
    assert isinstance(custom, Position)
    assert custom.mic_e_status == "Custom 1"
    mixed = decode_info(info, "AQ0P0P", now=NOW)
    assert isinstance(mixed, Position)
    assert mixed.mic_e_status == "Unknown"
    with pytest.raises(AprsError) as caught:
        encode_mic_e(Position(10, 20), status="Lunch")
    assert caught.value.reason == "bad-status"


def test_mic_e_longitude_ranges() -> None:
    for lon in (0.0, 5.5, -9.999, 10.0, 99.99, 100.0, 109.5, 110.0, 179.9, -179.99):
        destination, info = encode_mic_e(Position(1.0, lon))
        position = decode_info(info, str(destination), now=NOW)
        assert isinstance(position, Position)
        assert close(position.lon, lon, 1 / 6000), lon
    destination, info = encode_mic_e(Position(-90.0, 180.0))
    edge = decode_info(info, str(destination), now=NOW)
    assert isinstance(edge, Position)
    assert close(edge.lon, 180, 1 / 6000 + 1e-9)
    assert edge.lat == -90.0


# --- positions: refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (b"", "empty"),
        (b"\r\n", "empty"),
        (b"!9103.50N/07201.75W-", "bad-position"),
        (b"!9000.01N/07201.75W-", "bad-position"),
        (b"!4960.00N/07201.75W-", "bad-position"),
        (b"!4903.50N/18101.75W-", "bad-position"),
        (b"!4903.50X/07201.75W-", "bad-position"),
        (b"!4903.50N/07201.75W", "bad-position"),
        (b"!49 3.50N/07201.75W-", "bad-position"),
        (b"!4903.50N*07201.75W-", "bad-symbol"),
        (b"!4903.50N/07201.75W ", "bad-symbol"),
        (b"!", "bad-position"),
        (b"!/{{{{!!!!>", "bad-position"),
        (b"!/{{{{!!!!>   ", "bad-position"),
        (b"!/5L!!<*e7>\x7f7P", "bad-position"),
        (b"@322345z4903.50N/07201.75W-", "bad-timestamp"),
        (b"@092445z4903.50N/07201.75W-", "bad-timestamp"),
        (b"@0923", "bad-timestamp"),
        (b"/236000h4903.50N/07201.75W-", "bad-timestamp"),
        (b"@09234Xz4903.50N/07201.75W-", "bad-timestamp"),
    ],
    ids=repr,
)
def test_positions_refused(info: bytes, reason: str) -> None:
    assert reason_of(info) == reason


@pytest.mark.parametrize(
    ("destination", "info"),
    [
        ("S32U6", b'`(_fn"Oj/'),  # destination not 6 characters
        ("S32U6M", b'`(_fn"Oj/'),  # M is not a Mic-E digit
        ("S32A6T", b'`(_fn"Oj/'),  # custom bits only in the first three
        ("S3ZU6T", b'`(_fn"Oj/'),  # a blank before a digit
        ("ZZZZZZ", b'`(_fn"Oj/'),  # ambiguity beyond four digits
        ("S32U6T", b'`(_fn"O'),  # too short
        ("S32U6T", b'`\x10_fn"Oj/'),  # byte below 28
        ("S32U6T", b'`(_fn"Oj*'),  # symbol table
        ("", b'`(_fn"Oj/'),
    ],
)
def test_mic_e_refused(destination: str, info: bytes) -> None:
    assert reason_of(info, destination) in {"bad-mic-e", "bad-symbol", "bad-position"}


def test_encode_position_refuses() -> None:
    for position, reason in [
        (Position(90.5, 0), "bad-position"),
        (Position(0, -180.5), "bad-position"),
        (Position(math.nan, 0), "bad-position"),
        (Position(0, 0, symbol_table="x"), "bad-symbol"),
        (Position(0, 0, symbol=""), "bad-symbol"),
        (Position(0, 0, course=361), "bad-course"),
        (Position(0, 0, speed=-1), "bad-speed"),
        (Position(0, 0, speed=math.inf), "bad-speed"),
        (Position(0, 0, altitude=1e9), "bad-altitude"),
        (Position(0, 0, ambiguity=5), "bad-ambiguity"),
        (Position(0, 0, ambiguity=1, format="compressed"), "bad-ambiguity"),
        (Position(0, 0, comment="a|b"), "bad-text"),
        (Position(0, 0, format="mic-e"), "bad-format"),
    ]:
        with pytest.raises(AprsError) as caught:
            encode_position(position)
        assert caught.value.reason == reason, position
    with pytest.raises(AprsError) as caught:
        encode_mic_e(Position(0, 0, speed=800))
    assert caught.value.reason == "bad-speed"


def test_encoded_position_text() -> None:
    assert encode_position(Position(49 + 3.5 / 60, -(72 + 1.75 / 60), "/", "-", "Test")) == (
        b"!4903.50N/07201.75W-Test"
    )
    stamped = Position(
        -6.2,
        106.8,
        comment="x",
        timestamp=datetime(2026, 12, 9, 23, 45, 30, tzinfo=UTC),
        course=0,
        speed=12.4,
        altitude=100,
        messaging=True,
    )
    assert encode_position(stamped) == b"@092345z0612.00S/10648.00E>360/012/A=000328x"
    assert encode_position(Position(0, 0, speed=5)) == b"!0000.00N/00000.00E>000/005"
    assert encode_position(Position(10.0, 20.0, ambiguity=2)) == b"!1000.  N/02000.  E>"
    assert encode_position(Position(49.5, -72.75, symbol_table="3", format="compressed")) == (
        b"!d5L!!<*e8>   "
    )


# --- messages --------------------------------------------------------------------------------


def test_message_forms() -> None:
    assert decode_info(b":WU2Z     :Testing{003", now=NOW) == Message("WU2Z", "Testing", "003")
    assert decode_info(b":WU2Z     :Testing", now=NOW) == Message("WU2Z", "Testing")
    assert decode_info(b":KB2ICI-14:ack003", now=NOW) == Ack("KB2ICI-14", "003")
    assert decode_info(b":KB2ICI-14:rej003", now=NOW) == Reject("KB2ICI-14", "003")
    assert decode_info(b":KB2ICI-14:ackAb1  \r\n", now=NOW) == Ack("KB2ICI-14", "Ab1")
    assert decode_info(b":YB0ABC   :ack12}AB", now=NOW) == Ack("YB0ABC", "12")
    assert decode_info(b":YB0ABC   :Go now{MM}AA", now=NOW) == Message(
        "YB0ABC", "Go now", "MM", "AA"
    )
    assert decode_info(b":YB0ABC   :Go now{MM}", now=NOW) == Message("YB0ABC", "Go now", "MM", "")
    assert decode_info(b":YB0ABC   :a {b} c{7 ", now=NOW) == Message("YB0ABC", "a {b} c", "7")
    # A brace that is not a number stays in the text.
    assert decode_info(b":YB0ABC   :smile {:-)", now=NOW) == Message("YB0ABC", "smile {:-)")
    assert decode_info(":YB0ABC   :Jalan Ñ{1".encode(), now=NOW) == Message(
        "YB0ABC", "Jalan Ñ", "1"
    )


def test_bulletins() -> None:
    bulletin = decode_info(b":BLN3     :Snow on the pass", now=NOW)
    assert isinstance(bulletin, Message)
    assert bulletin.bulletin
    group = decode_info(b":BLN0SAR  :All SAR units to base", now=NOW)
    assert isinstance(group, Message)
    assert group.bulletin
    assert group.addressee == "BLN0SAR"
    assert not Message("YB0ABC", "x").bulletin
    assert encode_message(Message("BLN1FIRE", "Stand by")) == b":BLN1FIRE :Stand by"


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (b":WU2Z:Testing", "bad-message"),
        (b":WU2Z     Testing", "bad-message"),
        (b":         :blank addressee", "bad-addressee"),
        (b":", "bad-message"),
    ],
)
def test_messages_refused(info: bytes, reason: str) -> None:
    assert reason_of(info) == reason


def test_encode_message_forms() -> None:
    assert encode_message(Message("WU2Z", "Testing", "003")) == b":WU2Z     :Testing{003"
    assert encode_message(Message("YB0ABC-7", "hi")) == b":YB0ABC-7 :hi"
    assert encode_message(Message("YB0ABC", "Go", "MM", "AA")) == b":YB0ABC   :Go{MM}AA"
    assert encode_message(Message("YB0ABC", "Go", "MM", "")) == b":YB0ABC   :Go{MM}"
    assert encode_message(Message("YB0ABC", "x" * MESSAGE_LIMIT, "1")).endswith(b"x{1")
    assert encode_ack("KB2ICI-14", "003") == b":KB2ICI-14:ack003"
    assert encode_reject("YB0ABC", "A1") == b":YB0ABC   :rejA1"
    # An unnumbered text that would read as an ack is refused; numbered, it is a message.
    assert encode_message(Message("YB0ABC", "ack1", "2")) == b":YB0ABC   :ack1{2"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (Message("", "x"), "bad-addressee"),
        (Message("TENCHARSXX", "x"), "bad-addressee"),
        (Message("A:B", "x"), "bad-addressee"),
        (Message("A B", "x"), "bad-addressee"),
        (Message("YB0ABC", "x", "123456"), "bad-number"),
        (Message("YB0ABC", "x", ""), "bad-number"),
        (Message("YB0ABC", "x", "a-1"), "bad-number"),
        (Message("YB0ABC", "x", None, "AA"), "bad-number"),
        (Message("YB0ABC", "x", "1", "A-"), "bad-number"),
        (Message("YB0ABC", "a{b"), "bad-text"),
        (Message("YB0ABC", "a|b"), "bad-text"),
        (Message("YB0ABC", "a~b"), "bad-text"),
        (Message("YB0ABC", "a\nb"), "bad-text"),
        (Message("YB0ABC", "ack12"), "bad-text"),
        (Message("YB0ABC", "x" * (MESSAGE_LIMIT + 1)), "too-long"),
        (Message("YB0ABC", "é" * 34), "too-long"),
    ],
)
def test_encode_message_refuses(message: Message, reason: str) -> None:
    with pytest.raises(AprsError) as caught:
        encode_message(message)
    assert caught.value.reason == reason


def test_encode_ack_refuses() -> None:
    with pytest.raises(AprsError) as caught:
        encode_ack("YB0ABC", "123456")
    assert caught.value.reason == "bad-number"
    with pytest.raises(AprsError) as caught:
        encode_reject("WAYTOOLONGCALL", "1")
    assert caught.value.reason == "bad-addressee"


# --- status, third-party, other --------------------------------------------------------------


def test_status() -> None:
    assert decode_info(b">On scene", now=NOW) == Status("On scene")
    assert decode_info(b">092345zOn scene", now=NOW) == Status(
        "On scene", datetime(2026, 12, 9, 23, 45, tzinfo=UTC)
    )
    assert decode_info(encode_status("Net at 8"), now=NOW) == Status("Net at 8")
    with pytest.raises(AprsError) as caught:
        encode_status("a|b")
    assert caught.value.reason == "bad-text"


def test_third_party() -> None:
    packet = decode_info(b"}YB0ABC>APRS,TCPIP,YC1GW*::YC1XYZ   :hello{5", now=NOW)
    assert isinstance(packet, ThirdParty)
    assert packet.frame.source == Address("YB0ABC")
    assert packet.frame.path[-1] == Address("YC1GW", repeated=True)
    assert packet.packet == Message("YC1XYZ", "hello", "5")
    mic_e = decode_info(b'}YB0ABC>S32U6T:`(_fn"Oj/', now=NOW)
    assert isinstance(mic_e, ThirdParty)
    assert isinstance(mic_e.packet, Position)
    assert mic_e.packet.format == "mic-e"
    assert reason_of(b"}not a header") == "bad-third-party"
    assert reason_of(b"}A>B:}C>D:}E>F:>deep") == "bad-third-party"
    assert reason_of(b"}A>B:!9999.99N/00000.00E>") == "bad-position"


def test_line_ends_are_not_part_of_the_packet() -> None:
    assert decode_info(b">On scene\r\n", now=NOW) == Status("On scene")
    assert decode_info(b":WU2Z     :Testing\r", now=NOW) == Message("WU2Z", "Testing")
    position = decode_info(b"!4903.50N/07201.75W-Test\r", now=NOW)
    assert isinstance(position, Position)
    assert position.comment == "Test"
    _, info = encode_mic_e(Position(1, 2, comment="hi"))
    mic_e = decode_info(info + b"\r\n", "P0P0P0", now=NOW)
    assert isinstance(mic_e, Position)
    assert mic_e.comment == "hi"


def test_decoded_text_holds_no_nul() -> None:
    assert decode_info(b">a\x00b", now=NOW) == Status("a\ufffdb")
    assert decode_info(b":YB0ABC   :x\x00{1", now=NOW) == Message("YB0ABC", "x\ufffd", "1")
    _, info = encode_mic_e(Position(1, 2))
    mic_e = decode_info(info + b"\x00", "P0P0P0", now=NOW)
    assert isinstance(mic_e, Position)
    assert mic_e.comment == "\ufffd"


def test_other_types() -> None:
    assert decode_info(b";OBJECT   *092345z4903.50N/07201.75W>", now=NOW) == Other(
        ";", "OBJECT   *092345z4903.50N/07201.75W>"
    )
    assert decode_info(b"T#005,199,000,255,073,123,01101001", now=NOW) == Other(
        "T", "#005,199,000,255,073,123,01101001"
    )
    assert decode_info(b"\xffbinary", now=NOW) == Other("\ufffd", "binary")


# --- split_text ------------------------------------------------------------------------------


def test_split_text_fits_one_part() -> None:
    assert split_text("Go to case 12") == ["Go to case 12"]
    exact = "x" * MESSAGE_LIMIT
    assert split_text(exact) == [exact]
    assert split_text("   ") == []
    assert split_text("") == []


def test_split_text_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    parts = split_text(words)
    assert len(parts) > 1
    assert all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert " ".join(parts) == words
    assert all(not part.startswith(" ") and not part.endswith(" ") for part in parts)


def test_split_text_cuts_a_long_word() -> None:
    parts = split_text("a " + "x" * 150 + " b")
    assert parts == ["a", "x" * 67, "x" * 67, "x" * 16 + " b"]


def test_split_text_replaces_reserved_characters() -> None:
    assert split_text("a{b|c~d\te\r\nf") == ["a(b/c-d e f"]


def test_text_utf8_cannot_carry() -> None:
    assert split_text("a\ud800b c") == ["a?b c"]
    for encode in (
        lambda: encode_message(Message("YB0ABC", "a\ud800")),
        lambda: encode_status("\udfff"),
        lambda: encode_position(Position(0, 0, comment="\ud800")),
        lambda: encode_status("del\x7f"),
    ):
        with pytest.raises(AprsError) as caught:
            encode()
        assert caught.value.reason == "bad-text"


@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=200))
def test_split_text_parts_always_encode(text: str) -> None:
    for part in split_text(text):
        assert decode_info(encode_message(Message("YB0ABC", part, "1")), now=NOW) == Message(
            "YB0ABC", part, "1"
        )


def test_split_text_counts_utf8_bytes() -> None:
    parts = split_text("é" * 40)
    assert parts == ["é" * 33, "é" * 7]
    assert all(len(part.encode()) <= MESSAGE_LIMIT for part in parts)
    assert split_text("😀 ok", limit=3) == ["?", "ok"]
    with pytest.raises(ValueError, match="limit"):
        split_text("x", limit=0)


# --- round trips (Hypothesis) ----------------------------------------------------------------

lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)
tables = st.sampled_from("/\\AZ09")
symbols = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
# No '/' (a comment may not begin like a CSE/SPD extension or hold /A=), no '}' (Mic-E
# altitude), no reserved or control characters.
comments = st.text(
    alphabet=st.sampled_from("abcXYZ0189 -.,!()éλ"),
    max_size=30,
)
timestamps = st.datetimes(
    min_value=datetime(2001, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2099, 12, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(second=0, microsecond=0))
offsets = st.integers(-10 * 86400, 10 * 86400).map(lambda seconds: timedelta(seconds=seconds))


def expected_course(course: int | None, *, compressed: bool = False) -> int | None:
    if course is None:
        return 360 if compressed else None
    return course or 360


@given(
    lats,
    lons,
    tables,
    symbols,
    comments,
    st.none() | st.integers(0, 360),
    st.none() | st.floats(0, 999),
    st.none() | st.floats(-3000, 30000),
    st.booleans(),
    st.integers(0, 4),
    st.none() | st.tuples(timestamps, offsets),
)
def test_uncompressed_round_trip(  # noqa: PLR0917 - one argument per drawn field
    lat: float,
    lon: float,
    table: str,
    symbol: str,
    comment: str,
    course: int | None,
    speed: float | None,
    altitude: float | None,
    messaging: bool,
    ambiguity: int,
    stamp: tuple[datetime, timedelta] | None,
) -> None:
    timestamp, now = (stamp[0], stamp[0] + stamp[1]) if stamp else (None, NOW)
    sent = Position(
        lat, lon, table, symbol, comment, timestamp, course, speed, altitude, messaging,
        ambiguity=ambiguity,
    )  # fmt: skip
    got = decode_info(encode_position(sent), now=now)
    assert isinstance(got, Position)
    box = (1, 10, 100, 1000, 6000)[ambiguity] / 6000 + 1e-9
    assert abs(got.lat - lat) <= box
    assert abs(got.lon - lon) <= box
    assert (got.symbol_table, got.symbol, got.comment) == (table, symbol, comment)
    assert (got.messaging, got.ambiguity, got.format) == (messaging, ambiguity, "uncompressed")
    assert got.timestamp == timestamp
    if course is None and speed is None:
        assert (got.course, got.speed) == (None, None)
    else:
        assert got.course == expected_course(course)
        assert got.speed == min(round(speed or 0.0), 999)
    if altitude is None:
        assert got.altitude is None
    else:
        assert got.altitude is not None
        assert abs(got.altitude - altitude) <= FEET / 2 + 1e-9


@given(
    lats,
    lons,
    st.sampled_from("/\\AZ09"),
    symbols,
    comments,
    st.none() | st.integers(0, 360),
    st.none() | st.floats(0, 900),
    st.none() | st.floats(-3000, 30000),
    st.booleans(),
    st.none() | st.tuples(timestamps, offsets),
)
def test_compressed_round_trip(  # noqa: PLR0917 - one argument per drawn field
    lat: float,
    lon: float,
    table: str,
    symbol: str,
    comment: str,
    course: int | None,
    speed: float | None,
    altitude: float | None,
    messaging: bool,
    stamp: tuple[datetime, timedelta] | None,
) -> None:
    timestamp, now = (stamp[0], stamp[0] + stamp[1]) if stamp else (None, NOW)
    sent = Position(
        lat, lon, table, symbol, comment, timestamp, course, speed, altitude, messaging,
        format="compressed",
    )  # fmt: skip
    got = decode_info(encode_position(sent), now=now)
    assert isinstance(got, Position)
    assert abs(got.lat - lat) <= 1 / 380926
    assert abs(got.lon - lon) <= 1 / 190463
    assert (got.symbol_table, got.symbol, got.comment) == (table, symbol, comment)
    assert (got.messaging, got.format, got.timestamp) == (messaging, "compressed", timestamp)
    if course is None and speed is None:
        assert (got.course, got.speed) == (None, None)
    else:
        assert got.course is not None
        assert got.speed is not None
        wanted = expected_course(course, compressed=True) or 0
        assert abs((got.course - wanted + 180) % 360 - 180) <= 2
        assert (
            abs(math.log(got.speed + 1) - math.log((speed or 0) + 1)) <= math.log(1.08) / 2 + 1e-9
        )
    if altitude is None:
        assert got.altitude is None
    else:
        assert got.altitude is not None
        assert abs(got.altitude - altitude) <= FEET / 2 + 1e-9


@given(
    lats,
    lons,
    tables,
    symbols,
    comments,
    st.none() | st.integers(0, 360),
    st.none() | st.floats(0, 799),
    st.none() | st.integers(-10000, 30000),
    st.integers(0, 4),
    st.sampled_from(sorted(MIC_E_STATUSES)),
)
def test_mic_e_round_trip(  # noqa: PLR0917 - one argument per drawn field
    lat: float,
    lon: float,
    table: str,
    symbol: str,
    comment: str,
    course: int | None,
    speed: float | None,
    altitude: int | None,
    ambiguity: int,
    status: str,
) -> None:
    sent = Position(
        lat, lon, table, symbol, comment, None, course, speed, altitude, ambiguity=ambiguity
    )
    destination, info = encode_mic_e(sent, status)
    frame = Frame(destination, Address("YB0ABC", 9), (), info)
    got = decode(frame, now=NOW)
    assert isinstance(got, Position)
    box = (1, 10, 100, 1000, 6000)[ambiguity] / 6000 + 1e-9
    assert abs(got.lat - lat) <= box
    assert abs(got.lon - lon) <= box
    assert (got.symbol_table, got.symbol, got.comment) == (table, symbol, comment)
    assert (got.format, got.ambiguity, got.mic_e_status) == ("mic-e", ambiguity, status)
    assert got.course == expected_course(course)
    assert got.speed == round(speed or 0.0)
    assert got.altitude == (None if altitude is None else float(altitude))


addressees = st.from_regex(r"[A-Z0-9]{1,6}(-[0-9]{1,2})?|BLN[0-9A-Z][A-Z0-9]{0,5}", fullmatch=True)
numbers = st.from_regex(r"[A-Za-z0-9]{1,5}", fullmatch=True)


@given(
    addressees,
    st.text(max_size=200),
    st.none() | numbers,
    st.none() | st.from_regex(r"[A-Za-z0-9]{0,2}", fullmatch=True),
)
def test_message_round_trip(
    addressee: str, text: str, number: str | None, reply: str | None
) -> None:
    if number is None:
        reply = None
    for part in split_text(text) or [""]:
        message = Message(addressee, part, number, reply)
        if number is None and re.fullmatch(r"(ack|rej)[A-Za-z0-9]{1,5}(}[A-Za-z0-9]{0,5})?", part):
            continue  # refused: it would read as an ack (tested above)
        assert decode_info(encode_message(message), now=NOW) == message


@given(addressees, numbers)
def test_ack_and_reject_round_trip(addressee: str, number: str) -> None:
    assert decode_info(encode_ack(addressee, number), now=NOW) == Ack(addressee, number)
    assert decode_info(encode_reject(addressee, number), now=NOW) == Reject(addressee, number)


@given(st.text(max_size=300), st.integers(1, 100))
def test_split_text_parts_fit(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    for part in parts:
        assert 0 < len(part.encode()) <= limit
        assert not any(char in part for char in "{|~")
        assert part == part.strip()
    assume(all(len(char.encode()) <= limit for char in text))
    # Nothing but white space and reserved characters is lost or changed.
    cleaned = "".join(text.translate(str.maketrans("{|~", "(/-")).split())
    assert "".join("".join(parts).split()) == "".join(
        char for char in cleaned if ord(char) >= 0x20 and char != "\x7f"
    )


@given(st.text(max_size=60))
def test_status_round_trip(text: str) -> None:
    assume(not any(char in text for char in "|~\x7f") and all(ord(char) >= 0x20 for char in text))
    assume(not (len(text) >= 7 and text[:6].isdecimal() and text[6] == "z"))
    assert decode_info(encode_status(text), now=NOW) == Status(text)


@given(st.binary(max_size=120), st.text(alphabet="0123456789ABCDEFGHIJKLPQRSTUVWXYZ", max_size=7))
def test_decode_raises_only_aprs_errors(info: bytes, destination: str) -> None:
    try:
        decode_info(info, destination, now=NOW)
    except AprsError:
        return


@given(addressees, numbers, st.sampled_from(["YB0ABC", "YC1XYZ-7"]), st.booleans())
def test_third_party_round_trip(addressee: str, number: str, source: str, via_gate: bool) -> None:
    path = (Address("TCPIP", repeated=True), Address("YC1GW", repeated=True)) if via_gate else ()
    inner = Frame(Address("APZPSK"), Address.parse(source), path, encode_ack(addressee, number))
    packet = decode_info(b"}" + to_tnc2(inner).encode(), now=NOW)
    assert packet == ThirdParty(inner, Ack(addressee, number))


def test_only_ascii_digits_count() -> None:
    # Other scripts' digits (here Arabic-Indic) are text, not numbers, in any field of digits.
    arabic = "\u0661\u0662\u0663\u0664\u0665\u0666"
    assert decode_info(f">{arabic}zstatus".encode(), now=NOW) == Status(f"{arabic}zstatus")
    assert reason_of("!4\u066903.50N/07201.75W-".encode()) == "bad-position"
    assert reason_of("@\u0660\u06692345z4903.50N/07201.75W-".encode()) == "bad-timestamp"
