"""The codec against independent implementations from PyPI.

What the hub encodes parses in aprslib as the same message, number and coordinates; frames built
by ax253 and KISS framing written by kiss3 decode in the hub (and the reverse, where those
libraries are right). aprslib reports speed in km/h; the codec in knots.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import aprslib
import ax253
import kiss as kiss3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radio import aprs, ax25, kiss

NOW = datetime(2026, 12, 9, 23, 50, tzinfo=UTC)
KMH = 1.852
SOURCE = ax25.Address("YB0ABC", 9)
PATH = (ax25.Address("WIDE1", 1, repeated=True), ax25.Address("WIDE2", 1))


def parsed(info: bytes, destination: ax25.Address | None = None) -> dict[str, Any]:
    """aprslib's reading of a frame the hub would send, through the TNC2 text."""
    frame = ax25.Frame(destination or ax25.Address("APZPSK"), SOURCE, PATH, info)
    # The TNC2 text carries the raw info bytes (Mic-E uses bytes below 0x20).
    result: dict[str, Any] = aprslib.parse(ax25.to_tnc2(frame).encode())
    return result


# --- aprslib reads what the hub sends --------------------------------------------------------


@pytest.mark.parametrize("number", ["1", "003", "A1", "zz9Zz"])
def test_numbered_messages(number: str) -> None:
    result = parsed(aprs.encode_message(aprs.Message("YC1XYZ-7", "Go to case 12 now", number)))
    assert result["format"] == "message"
    assert result["addresse"] == "YC1XYZ-7"
    assert result["message_text"] == "Go to case 12 now"
    assert result["msgNo"] == number
    assert result["from"] == "YB0ABC-9"
    assert result["path"] == ["WIDE1-1*", "WIDE2-1"]


def test_message_parts_of_a_long_order() -> None:
    text = "Proceed to Jalan Sudirman 45, RT 03, ambulance on scene, crowd of about 200. " * 3
    for index, part in enumerate(aprs.split_text(text), start=1):
        result = parsed(aprs.encode_message(aprs.Message("YC1XYZ", part, str(index))))
        assert result["message_text"] == part
        assert result["msgNo"] == str(index)


def test_reply_ack_form() -> None:
    result = parsed(aprs.encode_message(aprs.Message("YC1XYZ", "Copy that", "MM", "AA")))
    assert (result["message_text"], result["msgNo"], result["ackMsgNo"]) == (
        "Copy that",
        "MM",
        "AA",
    )


@pytest.mark.parametrize("number", ["1", "003", "A1", "zz9Zz"])
def test_acks_and_rejects(number: str) -> None:
    ack = parsed(aprs.encode_ack("YC1XYZ-7", number))
    assert (ack["addresse"], ack["response"], ack["msgNo"]) == ("YC1XYZ-7", "ack", number)
    rej = parsed(aprs.encode_reject("YC1XYZ", number))
    assert (rej["addresse"], rej["response"], rej["msgNo"]) == ("YC1XYZ", "rej", number)


def test_bulletins_and_status() -> None:
    general = parsed(aprs.encode_message(aprs.Message("BLN1", "Road closed at km 12")))
    assert (general["format"], general["bid"], general["message_text"]) == (
        "bulletin",
        "1",
        "Road closed at km 12",
    )
    group = parsed(aprs.encode_message(aprs.Message("BLN0SAR", "All SAR units to base")))
    assert (group["format"], group["identifier"]) == ("group-bulletin", "SAR")
    status = parsed(aprs.encode_status("On scene, case 12"))
    assert (status["format"], status["status"]) == ("status", "On scene, case 12")


def test_uncompressed_positions() -> None:
    moment = datetime(2026, 12, 9, 23, 45, tzinfo=UTC)
    position = aprs.Position(
        -6.2,
        106.8,
        "/",
        "[",
        "on patrol",
        timestamp=moment,
        course=88,
        speed=36,
        altitude=120,
        messaging=True,
    )
    result = parsed(aprs.encode_position(position))
    assert result["format"] == "uncompressed"
    assert (result["latitude"], result["longitude"]) == pytest.approx((-6.2, 106.8))
    assert (result["symbol_table"], result["symbol"], result["comment"]) == ("/", "[", "on patrol")
    assert result["course"] == 88
    assert result["speed"] == pytest.approx(36 * KMH)
    assert result["altitude"] == pytest.approx(394 * 0.3048)
    assert result["messagecapable"] is True
    assert result["timestamp"] == int(moment.timestamp())
    plain = parsed(aprs.encode_position(aprs.Position(49.05833, -72.02917, "\\", "-")))
    assert (plain["latitude"], plain["longitude"]) == pytest.approx((49.05833, -72.02917), abs=1e-4)
    assert plain["messagecapable"] is False


def test_compressed_positions() -> None:
    position = aprs.Position(
        -33.9249, 18.4241, "/", ">", "mobile", course=200, speed=30, format="compressed"
    )
    result = parsed(aprs.encode_position(position))
    assert result["format"] == "compressed"
    assert (result["latitude"], result["longitude"]) == pytest.approx((-33.9249, 18.4241), abs=1e-5)
    assert result["course"] == 200
    assert result["speed"] == pytest.approx(30 * KMH, rel=0.05)
    assert result["comment"] == "mobile"
    stamped = aprs.Position(
        1.5,
        -2.5,
        "A",
        "#",
        timestamp=datetime(2026, 12, 9, 23, 45, tzinfo=UTC),
        format="compressed",
    )
    again = parsed(aprs.encode_position(stamped))
    assert (again["latitude"], again["longitude"]) == pytest.approx((1.5, -2.5), abs=1e-5)
    assert (again["symbol_table"], again["symbol"]) == ("A", "#")


@pytest.mark.parametrize(
    ("status", "aprslib_type"),
    [
        ("Off Duty", "M0: Off Duty"),
        ("En Route", "M1: En Route"),
        ("In Service", "M2: In Service"),
        ("Returning", "M3: Returning"),
        ("Committed", "M4: Committed"),
        ("Special", "M5: Special"),
        ("Priority", "M6: Priority"),
        ("Emergency", "Emergency"),
    ],
)
def test_mic_e_positions(status: str, aprslib_type: str) -> None:
    position = aprs.Position(-6.2, 106.8, "/", ">", "unit 7", course=251, speed=20, altitude=35)
    destination, info = aprs.encode_mic_e(position, status)
    result = parsed(info, destination)
    assert result["format"] == "mic-e"
    assert result["mtype"] == aprslib_type
    assert (result["latitude"], result["longitude"]) == pytest.approx((-6.2, 106.8))
    assert result["course"] == 251
    assert result["speed"] == pytest.approx(20 * KMH)
    assert result["altitude"] == 35
    assert result["comment"] == "unit 7"


positions = st.builds(
    aprs.Position,
    lat=st.floats(-89.99, 89.99),
    lon=st.floats(-179.99, 179.99),
    symbol_table=st.sampled_from("/\\"),
    symbol=st.sampled_from(">[-kjv"),
    course=st.none() | st.integers(1, 360),
    speed=st.none() | st.integers(1, 500).map(float),
)


@given(positions, st.sampled_from(["uncompressed", "compressed", "mic-e"]))
def test_aprslib_reads_every_format_within_its_precision(
    position: aprs.Position, position_format: str
) -> None:
    if position_format == "mic-e":
        destination, info = aprs.encode_mic_e(position)
        tolerance = 1 / 6000
    else:
        destination = ax25.Address("APZPSK")
        position = aprs.Position(
            position.lat,
            position.lon,
            position.symbol_table,
            position.symbol,
            course=position.course,
            speed=position.speed,
            format="compressed" if position_format == "compressed" else "uncompressed",
        )
        info = aprs.encode_position(position)
        tolerance = 1e-5 if position_format == "compressed" else 1 / 6000
    result = parsed(info, destination)
    assert result["format"] == position_format
    assert math.isclose(result["latitude"], position.lat, abs_tol=tolerance)
    assert math.isclose(result["longitude"], position.lon, abs_tol=tolerance)
    # And the hub reads its own frame the same way aprslib does.
    ours = aprs.decode_info(info, str(destination), now=NOW)
    assert isinstance(ours, aprs.Position)
    assert math.isclose(ours.lat, result["latitude"], abs_tol=1e-9)
    assert math.isclose(ours.lon, result["longitude"], abs_tol=1e-9)


@pytest.mark.parametrize(
    "line",
    [
        "YB0ABC>APDW16,WIDE1-1:!4903.50N/07201.75W-Test /A=001234",
        "YB0ABC>APDW16:@092345z4903.50N/07201.75W>088/036",
        "YB0ABC>APDW16:=/5L!!<*e7>7P[",
        "YB0ABC>APDW16:!/5L!!<*e7OS]S",
        'YB0ABC>S32U6T:`(_fn"Oj/',
        'YB0ABC>T2SP0W:`c_Vm6hk/`"49}Hello=',
        "YB0ABC>APDW16:!49  .  N/072  .  W-",
    ],
)
def test_hub_and_aprslib_agree_on_positions(line: str) -> None:
    theirs = aprslib.parse(line)
    ours = aprs.decode(ax25.from_tnc2(line), now=NOW)
    assert isinstance(ours, aprs.Position)
    assert ours.format == theirs["format"]
    assert (ours.lat, ours.lon) == pytest.approx((theirs["latitude"], theirs["longitude"]))
    if "course" in theirs:
        assert ours.course == theirs["course"]
        assert ours.speed is not None
        assert ours.speed * KMH == pytest.approx(theirs["speed"])
    if "altitude" in theirs:
        assert ours.altitude == pytest.approx(theirs["altitude"])


# --- ax253 frames decode in the hub ----------------------------------------------------------


def test_ax253_frames_decode_in_the_hub() -> None:
    info = aprs.encode_message(aprs.Message("YB0ABC-9", "ack me", "42"))
    # ax253 sets the extension bit on any starred digipeater, so only the last may carry a star.
    for path in ([], ["WIDE2-2"], ["WIDE1-1", "WIDE2-1"], ["WIDE1-1", "YC1GW*"]):
        theirs = ax253.Frame.ui("APZPSK", "YC1XYZ-7", path, info)
        frame = ax25.decode(bytes(theirs))
        assert frame.source == ax25.Address("YC1XYZ", 7)
        assert frame.destination == ax25.Address("APZPSK")
        assert [str(hop) for hop in frame.path] == [hop.rstrip("*") for hop in path]
        assert ax25.to_tnc2(frame) == str(theirs)
        assert aprs.decode(frame, now=NOW) == aprs.Message("YB0ABC-9", "ack me", "42")


def test_ax253_tnc2_frames_decode_in_the_hub() -> None:
    line = "YC1XYZ-7>APZPSK,WIDE2-1::YB0ABC-9 :ack42"
    frame = ax25.decode(bytes(ax253.Frame.from_str(line)))
    assert ax25.to_tnc2(frame) == line
    assert aprs.decode(frame, now=NOW) == aprs.Ack("YB0ABC-9", "42")
    assert ax25.from_tnc2(line) == frame


def test_hub_frames_decode_in_ax253() -> None:
    frame = ax25.Frame(
        ax25.Address("APZPSK"),
        ax25.Address("YB0ABC", 9),
        (ax25.Address("WIDE1", 1), ax25.Address("WIDE2", 1, repeated=False)),
        aprs.encode_message(aprs.Message("YC1XYZ", "hello", "7")),
    )
    theirs = ax253.Frame.from_bytes(ax25.encode(frame))
    assert str(theirs) == ax25.to_tnc2(frame)
    assert bytes(theirs.info) == frame.info


# --- kiss3's KISS framing --------------------------------------------------------------------


class Collected:
    """The transport kiss3's protocol writes its encoded frames to; keeps the bytes."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


def kiss3_wire(*frames: ax253.Frame, txdelay: int | None = None) -> bytes:
    protocol = kiss3.KISSProtocol()
    transport = Collected()
    protocol.transport = transport
    if txdelay is not None:
        protocol.write_setting(kiss3.Command.TX_DELAY, txdelay)
    for frame in frames:
        protocol.write(frame)
    return bytes(transport.data)


def test_kiss3_framing_decodes_in_the_hub() -> None:
    # Info bytes that need escaping on the KISS link.
    special = ax253.Frame.ui("APZPSK", "YC1XYZ", ["WIDE1-1"], b">temp \xc0 and \xdb")
    message = ax253.Frame.ui("APZPSK", "YC1XYZ-7", [], b":YB0ABC-9 :ack42")
    wire = kiss3_wire(special, message, txdelay=30)
    decoder = kiss.KissDecoder()
    # Cut the stream one byte at a time, as a slow serial port delivers it.
    out: list[kiss.KissFrame | kiss.KissError] = []
    for index in range(len(wire)):
        out += decoder.feed(wire[index : index + 1])
    assert out[0] == kiss.KissFrame(0, kiss.KissCommand.TXDELAY, bytes([30]))
    first, second = out[1:]
    assert isinstance(first, kiss.KissFrame)
    assert isinstance(second, kiss.KissFrame)
    assert ax25.decode(first.data).info == b">temp \xc0 and \xdb"
    assert aprs.decode(ax25.decode(second.data), now=NOW) == aprs.Ack("YB0ABC-9", "42")


def test_hub_framing_decodes_in_kiss3() -> None:
    frame = ax25.Frame(ax25.Address("APZPSK"), ax25.Address("YB0ABC"), (), b">a\xc0b\xdbc")
    wire = kiss.data_frame(ax25.encode(frame)) + kiss.data_frame(ax25.encode(frame))
    decoded = list(kiss3.AX25KISSDecode().update(wire))
    assert [bytes(item.info) for item in decoded] == [frame.info, frame.info]
    assert str(decoded[0]) == "YB0ABC>APZPSK:" + frame.info.decode("latin-1")
