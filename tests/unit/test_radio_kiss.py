"""KISS framing: escapes, commands, and a stream decoder that survives any cut and any garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from radio.kiss import (
    FEND,
    KissCommand,
    KissDecoder,
    KissError,
    KissFrame,
    command_frame,
    data_frame,
    decode_frame,
    encode,
    escape,
    unescape,
)


def frames_of(out: list[KissFrame | KissError]) -> list[KissFrame]:
    return [item for item in out if isinstance(item, KissFrame)]


def reasons_of(out: list[KissFrame | KissError]) -> list[str]:
    return [item.reason for item in out if isinstance(item, KissError)]


def test_escape_replaces_fend_and_fesc() -> None:
    assert escape(b"a\xc0b\xdbc") == b"a\xdb\xdcb\xdb\xddc"
    assert unescape(b"a\xdb\xdcb\xdb\xddc") == b"a\xc0b\xdbc"
    assert unescape(b"plain") == b"plain"


@pytest.mark.parametrize(
    "raw", [b"\xdb", b"a\xdbA", b"\xdb\xdb\xdc", b"x\xc0y", b"\xdb\xdc\xdb"], ids=repr
)
def test_bad_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(KissError) as caught:
        unescape(raw)
    assert caught.value.reason == "bad-escape"


def test_data_frame_bytes() -> None:
    assert data_frame(b"\x01\xc0\x02") == b"\xc0\x00\x01\xdb\xdc\x02\xc0"
    assert data_frame(b"x", port=3) == b"\xc0\x30x\xc0"
    # Port 12's type byte is FEND itself, so it is escaped like data.
    assert data_frame(b"x", port=12) == b"\xc0\xdb\xdcx\xc0"


def test_command_frames() -> None:
    assert command_frame(KissCommand.TXDELAY, 50) == b"\xc0\x01\x32\xc0"
    assert command_frame(KissCommand.PERSISTENCE, 63, port=1) == b"\xc0\x12\x3f\xc0"
    assert command_frame(KissCommand.SLOTTIME, 10) == b"\xc0\x03\x0a\xc0"
    assert command_frame(KissCommand.FULLDUPLEX, 1) == b"\xc0\x05\x01\xc0"
    assert command_frame(KissCommand.RETURN, 0) == b"\xc0\xff\xc0"
    # A value that is itself FEND is escaped like data.
    assert command_frame(KissCommand.TXDELAY, 0xC0) == b"\xc0\x01\xdb\xdc\xc0"


def test_command_frame_refuses_bad_values() -> None:
    with pytest.raises(KissError) as caught:
        command_frame(KissCommand.TXDELAY, 256)
    assert caught.value.reason == "bad-value"
    with pytest.raises(KissError) as caught:
        command_frame(KissCommand.DATA, 0)
    assert caught.value.reason == "bad-command"
    with pytest.raises(KissError) as caught:
        data_frame(b"x", port=16)
    assert caught.value.reason == "bad-port"


def test_decode_frame_reads_port_and_command() -> None:
    assert decode_frame(b"\x50abc") == KissFrame(5, KissCommand.DATA, b"abc")
    assert decode_frame(b"\x01\x32") == KissFrame(0, KissCommand.TXDELAY, b"\x32")
    assert decode_frame(b"\xff") == KissFrame(0, KissCommand.RETURN, b"")
    for raw, reason in [
        (b"", "empty"),
        (b"\x00", "empty"),
        (b"\x07x", "bad-command"),
        (b"\x0ex", "bad-command"),
        (b"\x1fx", "bad-command"),
    ]:
        with pytest.raises(KissError) as caught:
            decode_frame(raw)
        assert caught.value.reason == reason


def test_decoder_reads_back_to_back_frames_and_ignores_empty_ones() -> None:
    decoder = KissDecoder()
    stream = b"\xc0\xc0\xc0" + data_frame(b"one") + b"\xc0\xc0" + data_frame(b"two", port=2)
    out = decoder.feed(stream)
    assert out == [KissFrame(0, KissCommand.DATA, b"one"), KissFrame(2, KissCommand.DATA, b"two")]


def test_decoder_drops_bytes_before_the_first_fend() -> None:
    decoder = KissDecoder()
    assert decoder.feed(b"tail of a frame we joined late") == []
    assert decoder.feed(b"\xc0\x00ok\xc0") == [KissFrame(0, KissCommand.DATA, b"ok")]


def test_decoder_reports_a_bad_frame_and_resumes() -> None:
    decoder = KissDecoder()
    out = decoder.feed(b"\xc0\x00bad\xdbX\xc0\x00good\xc0")
    assert reasons_of(out) == ["bad-escape"]
    assert frames_of(out) == [KissFrame(0, KissCommand.DATA, b"good")]


def test_oversized_frame_is_skipped_and_reported_once() -> None:
    decoder = KissDecoder(max_frame=16)
    out = decoder.feed(b"\xc0\x00" + b"x" * 17 + b"\xc0")
    assert reasons_of(out) == ["oversized"]
    # A frame far longer than the limit, fed in pieces, is reported once and memory stays bounded.
    out = decoder.feed(b"\x00")
    for _ in range(100):
        out += decoder.feed(b"y" * 50)
    assert reasons_of(out) == ["oversized"]
    assert len(decoder._buffer) <= 2 * 17
    out = decoder.feed(b"\xc0" + data_frame(b"after"))
    assert out == [KissFrame(0, KissCommand.DATA, b"after")]


def test_exactly_max_frame_passes() -> None:
    decoder = KissDecoder(max_frame=16)
    payload = b"\xc0" * 16  # escaped to 32 bytes: the limit is on the unescaped size
    assert decoder.feed(data_frame(payload)) == [KissFrame(0, KissCommand.DATA, payload)]


kiss_frames = st.builds(
    KissFrame,
    port=st.integers(0, 15),
    command=st.sampled_from([c for c in KissCommand if c is not KissCommand.RETURN]),
    data=st.binary(min_size=1, max_size=300),
)


@given(st.binary(max_size=500))
def test_escape_round_trip(data: bytes) -> None:
    escaped = escape(data)
    assert FEND not in escaped
    assert unescape(escaped) == data


@given(st.binary(max_size=200))
def test_unescape_never_raises_anything_else(data: bytes) -> None:
    try:
        escape(unescape(data))
    except KissError as exc:
        reason: str | None = exc.reason
    else:
        reason = None
    assert reason in {None, "bad-escape"}


@given(kiss_frames)
def test_encode_decode_round_trip(frame: KissFrame) -> None:
    wire = encode(frame)
    assert wire[0] == FEND
    assert wire[-1] == FEND
    assert FEND not in wire[1:-1]
    assert decode_frame(wire[1:-1]) == frame


@given(st.lists(kiss_frames, max_size=12), st.data())
def test_stream_split_at_any_boundaries(frames: list[KissFrame], data: st.DataObject) -> None:
    stream = b"".join(encode(frame) for frame in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    decoder = KissDecoder()
    out: list[KissFrame | KissError] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    assert out == frames


@given(st.binary(max_size=400), st.lists(kiss_frames, min_size=1, max_size=4))
def test_garbage_then_frames_resynchronises(garbage: bytes, frames: list[KissFrame]) -> None:
    decoder = KissDecoder(max_frame=64)
    out = decoder.feed(garbage)
    assert all(isinstance(item, KissFrame | KissError) for item in out)
    # A FEND closes whatever the garbage left open; every frame after it comes through whole.
    decoder.feed(bytes([FEND]))
    small = [KissFrame(f.port, f.command, f.data[:64]) for f in frames]
    assert decoder.feed(b"".join(encode(f) for f in small)) == small
