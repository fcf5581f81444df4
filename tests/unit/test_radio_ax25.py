"""AX.25 UI frames: address bytes as the spec lays them out, TNC2 text, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radio.ax25 import (
    Address,
    AX25Error,
    Frame,
    decode,
    encode,
    from_tnc2,
    to_tnc2,
)


def shifted(call: str) -> bytes:
    return bytes(ord(char) << 1 for char in call.ljust(6))


def test_address_parse_and_str() -> None:
    assert Address.parse("YB0ABC-7") == Address("YB0ABC", 7)
    assert Address.parse("WIDE2-1*") == Address("WIDE2", 1, repeated=True)
    assert Address.parse("yb0abc") == Address("YB0ABC")
    assert str(Address("YB0ABC", 7)) == "YB0ABC-7"
    assert str(Address("YB0ABC")) == "YB0ABC"
    assert str(Address("WIDE2", 1, repeated=True)) == "WIDE2-1"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "bad-callsign"),
        ("TOOLONG1", "bad-callsign"),
        ("YB0-ABC", "bad-callsign"),
        ("YB0ABC-16", "bad-ssid"),
        ("YB0ABC-07", "bad-ssid"),
        ("YB0AB!", "bad-callsign"),
        ("YB0ABC-", "bad-callsign"),
    ],
)
def test_address_parse_refuses(text: str, reason: str) -> None:
    with pytest.raises(AX25Error) as caught:
        Address.parse(text)
    assert caught.value.reason == reason


def test_address_construction_is_checked() -> None:
    with pytest.raises(AX25Error):
        Address("yb0abc")
    with pytest.raises(AX25Error):
        Address("YB0ABC", -1)


def test_encode_lays_out_the_address_field() -> None:
    frame = Frame(
        Address("APZPSK"),
        Address("YB0ABC", 7),
        (Address("WIDE1", 1, repeated=True), Address("WIDE2", 2)),
        b"!info",
    )
    data = encode(frame)
    assert data[:6] == shifted("APZPSK")
    assert data[6] == 0x80 | 0x60  # C bit, reserved bits, SSID 0, not last
    assert data[7:13] == shifted("YB0ABC")
    assert data[13] == 0x60 | (7 << 1)
    assert data[14:20] == shifted("WIDE1")
    assert data[20] == 0x80 | 0x60 | (1 << 1)  # has been repeated
    assert data[21:27] == shifted("WIDE2")
    assert data[27] == 0x60 | (2 << 1) | 0x01  # last address
    assert data[28:30] == b"\x03\xf0"
    assert data[30:] == b"!info"
    assert decode(data) == frame


def test_source_is_last_without_a_path() -> None:
    data = encode(Frame(Address("APRS"), Address("N0CALL"), (), b">hi"))
    assert data[13] & 0x01
    assert not data[6] & 0x01


def test_decode_takes_poll_bit_and_ignores_c_bits_on_stations() -> None:
    data = bytearray(encode(Frame(Address("APRS"), Address("N0CALL"), (), b">hi")))
    data[13] |= 0x80  # a response frame: C bit on the source
    data[14] = 0x13  # UI with the poll bit
    assert decode(bytes(data)) == Frame(Address("APRS"), Address("N0CALL"), (), b">hi")


def good() -> bytearray:
    return bytearray(
        encode(Frame(Address("APRS"), Address("N0CALL"), (Address("WIDE1", 1),), b"x"))
    )


def with_bytes(index: int, value: int) -> bytes:
    data = good()
    data[index] = value
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (bytes(good()[:15]), "short"),
        (bytes(good()[:22]), "short"),  # ends inside the address field
        (bytes(good()[:21]), "short"),  # no control or PID
        (with_bytes(21, 0x3F), "not-ui"),  # SABM
        (with_bytes(21, 0x00), "not-ui"),  # an I frame
        (with_bytes(22, 0xCF), "bad-pid"),  # NET/ROM
        (with_bytes(0, ord("a") << 1), "bad-callsign"),
        (with_bytes(0, 0x41), "bad-address"),  # extension bit inside the callsign
        (with_bytes(0, ord(" ") << 1), "bad-callsign"),  # leading space
        (with_bytes(6, 0x61), "bad-address"),  # the address field ends at the destination
    ],
)
def test_decode_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(AX25Error) as caught:
        decode(data)
    assert caught.value.reason == reason


def test_decode_refuses_more_than_eight_digipeaters() -> None:
    frame = Frame(Address("APRS"), Address("N0CALL"), tuple(Address(f"D{i}") for i in range(8)))
    data = bytearray(encode(frame))
    # Clear the last digipeater's extension bit and add a ninth address after it.
    end = 7 * 10
    data[end - 1] &= 0xFE
    data[end:end] = shifted("D8") + bytes([0x61])
    with pytest.raises(AX25Error) as caught:
        decode(bytes(data))
    assert caught.value.reason == "too-many-digis"
    with pytest.raises(AX25Error) as caught:
        encode(Frame(Address("APRS"), Address("N0CALL"), tuple(Address(f"D{i}") for i in range(9))))
    assert caught.value.reason == "too-many-digis"


def test_tnc2_text() -> None:
    frame = Frame(
        Address("APZPSK"),
        Address("YB0ABC", 7),
        (Address("WIDE1", 1, repeated=True), Address("YC1GW", repeated=True), Address("WIDE2", 1)),
        b":YC1XYZ   :hello{1",
    )
    line = "YB0ABC-7>APZPSK,WIDE1-1,YC1GW*,WIDE2-1::YC1XYZ   :hello{1"
    assert to_tnc2(frame) == line
    assert from_tnc2(line) == frame
    # A star on a digipeater marks every one before it as repeated too.
    assert from_tnc2("A>B,C,D*,E:x").path == (
        Address("C", repeated=True),
        Address("D", repeated=True),
        Address("E"),
    )
    assert to_tnc2(Frame(Address("B"), Address("A"), (), b"\xff")) == "A>B:\ufffd"
    assert to_tnc2(Frame(Address("B"), Address("A"), (), b"a\x00b")) == "A>B:a\ufffdb"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no separators", "bad-tnc2"),
        ("A>B no colon", "bad-tnc2"),
        ("AB:info", "bad-tnc2"),
        ("A*>B:x", "bad-tnc2"),
        ("A>B,1,2,3,4,5,6,7,8,9:x", "too-many-digis"),
        ("A>B,qAR,TOOLONGCALL:x", "bad-callsign"),
        ("A>B-99:x", "bad-ssid"),
    ],
)
def test_from_tnc2_refuses(line: str, reason: str) -> None:
    with pytest.raises(AX25Error) as caught:
        from_tnc2(line)
    assert caught.value.reason == reason


calls = st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True)
stations = st.builds(Address, calls, st.integers(0, 15))


@st.composite
def frames(draw: st.DrawFn, *, text_info: bool = False) -> Frame:
    hops = draw(st.lists(stations, max_size=8))
    repeated = draw(st.integers(0, len(hops)))
    path = tuple(Address(hop.call, hop.ssid, index < repeated) for index, hop in enumerate(hops))
    if text_info:  # what the TNC2 text can carry: UTF-8 without NUL
        info = draw(st.text(st.characters(blacklist_characters="\x00"), max_size=256)).encode()
    else:
        info = draw(st.binary(max_size=256))
    return Frame(draw(stations), draw(stations), path, info)


@given(frames())
def test_encode_decode_round_trip(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@given(frames(text_info=True))
def test_tnc2_round_trip(frame: Frame) -> None:
    assert from_tnc2(to_tnc2(frame)) == frame


@given(st.binary(max_size=120))
def test_decode_raises_only_ax25_errors(data: bytes) -> None:
    try:
        frame = decode(data)
    except AX25Error:
        return
    assert decode(encode(frame)).info == frame.info


@given(st.text(max_size=80))
def test_from_tnc2_raises_only_ax25_errors(line: str) -> None:
    try:
        from_tnc2(line)
    except AX25Error:
        return


def test_ssid_digits_are_ascii() -> None:
    with pytest.raises(AX25Error) as caught:
        Address.parse("YB0ABC-\u0667")  # Arabic-Indic seven
    assert caught.value.reason == "bad-callsign"
