"""Fuzzing the whole receive path (KISS stream → AX.25 → APRS) with a fixed seed.

More than 100,000 inputs: random bytes, truncated and oversized frames, bad escapes, valid frames
with bytes flipped, inserted or dropped, and valid AX.25 frames carrying mutated, random or very
short APRS fields. Nothing but the codec's own errors may escape, decoded positions are always
on the globe, and the stream decoder always reads the next good frame after whatever came before.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from radio import aprs, ax25, kiss

SEED = 20261201
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PER_KIND = 15_000
MIN_INPUTS = 100_000
SENTINEL = ax25.Frame(ax25.Address("APZPSK"), ax25.Address("SENTNL"), (), b">still here")


def corpus() -> list[ax25.Frame]:
    """Valid frames of every format the codec reads."""
    source, destination = ax25.Address("YB0ABC", 9), ax25.Address("APZPSK")
    path = (ax25.Address("WIDE1", 1, repeated=True), ax25.Address("WIDE2", 1))
    moment = datetime(2026, 12, 1, 11, 58, tzinfo=UTC)
    infos = [
        aprs.encode_position(aprs.Position(-6.2, 106.8, comment="patrol", course=90, speed=12)),
        aprs.encode_position(aprs.Position(49.05, -72.03, timestamp=moment, messaging=True)),
        aprs.encode_position(aprs.Position(10.0, 20.0, ambiguity=3, altitude=120)),
        aprs.encode_position(aprs.Position(-33.9, 18.4, format="compressed", course=4, speed=30)),
        aprs.encode_position(aprs.Position(1.0, 2.0, format="compressed", timestamp=moment)),
        aprs.encode_message(aprs.Message("YC1XYZ-7", "Go to case 12", "A1")),
        aprs.encode_message(aprs.Message("YC1XYZ", "reply", "MM", "AA")),
        aprs.encode_message(aprs.Message("BLN1FIRE", "All units stand by")),
        aprs.encode_ack("YC1XYZ-7", "A1"),
        aprs.encode_reject("YC1XYZ", "7"),
        aprs.encode_status("On scene"),
        b">011155zOn scene",
        b"}YB0ABC>APRS,TCPIP,YC1GW*::YC1XYZ   :hello{5",
        b";OBJECT   *011155z4903.50N/07201.75W>",
        b"/115500h4903.50N/07201.75W>",
    ]
    frames = [ax25.Frame(destination, source, path, info) for info in infos]
    for status in aprs.MIC_E_STATUSES:
        mic_e_destination, info = aprs.encode_mic_e(
            aprs.Position(-6.2, 106.8, comment="x", course=200, speed=55, altitude=30), status
        )
        frames.append(ax25.Frame(mic_e_destination, source, path, info))
    return frames


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(out) + 1)
        if choice < 0.4 and out:
            out[min(position, len(out) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            out.insert(position, rng.randrange(256))
        elif choice < 0.8 and out:
            del out[min(position, len(out) - 1)]
        else:
            out[position:position] = rng.choice([b"\xc0", b"\xdb", b"\xdb\xdb", b"\xc0\xc0"])
    return bytes(out)


def mutate_text(rng: random.Random, info: bytes) -> bytes:
    """An info field with characters APRS cares about swapped in."""
    out = bytearray(info)
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        index = rng.randrange(len(out))
        out[index] = rng.choice(
            b"0123456789 ./:{}!@=`'>NSEWz*-\x7f\x1c\r\n" + bytes([rng.randrange(256)])
        )
    if rng.random() < 0.3:
        out = out[: rng.randrange(len(out) + 1)]
    return bytes(out)


def inputs(rng: random.Random) -> Iterator[tuple[str, bytes]]:  # noqa: C901 - one generator per kind
    frames = corpus()
    encoded = [kiss.data_frame(ax25.encode(frame)) for frame in frames]

    def random_bytes() -> bytes:
        return rng.randbytes(rng.randrange(400))

    def random_framed() -> bytes:
        return b"\xc0" + rng.randbytes(rng.randrange(400)) + b"\xc0"

    def truncated() -> bytes:
        frame = rng.choice(encoded)
        return frame[: rng.randrange(1, len(frame))] + b"\xc0"

    def oversized() -> bytes:
        return (
            b"\xc0\x00" + rng.randbytes(rng.randrange(1025, 3000)).replace(b"\xc0", b"") + b"\xc0"
        )

    def bad_escape() -> bytes:
        frame = bytearray(rng.choice(encoded))
        position = rng.randrange(1, len(frame) - 1)
        frame[position:position] = bytes([kiss.FESC, rng.choice([0x00, 0x41, kiss.FESC, 0xFF])])
        return bytes(frame)

    def mutated_frame() -> bytes:
        return mutate(rng, rng.choice(encoded))

    def mutated_info() -> bytes:
        frame = rng.choice(frames)
        info = mutate_text(rng, frame.info)
        destination = frame.destination
        if rng.random() < 0.2:
            call = list(destination.call.ljust(6, "0"))
            call[rng.randrange(6)] = rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            destination = ax25.Address("".join(call))
        return kiss.data_frame(ax25.encode(ax25.Frame(destination, frame.source, frame.path, info)))

    def random_info() -> bytes:
        data_type = rng.choice(b"!=/@:>}`';T_$")
        body = bytes(rng.choice(b"0123456789 ./:{}NSEWhz*-!|~") for _ in range(rng.randrange(40)))
        frame = rng.choice(frames)
        info = bytes([data_type]) + body
        return kiss.data_frame(ax25.encode(ax25.Frame(frame.destination, frame.source, (), info)))

    def short_info() -> bytes:
        frame = rng.choice(frames)
        info = rng.randbytes(rng.randrange(4))
        return kiss.data_frame(ax25.encode(ax25.Frame(frame.destination, frame.source, (), info)))

    kinds: list[tuple[str, Callable[[], bytes]]] = [
        ("random", random_bytes),
        ("random-framed", random_framed),
        ("truncated", truncated),
        ("oversized", oversized),
        ("bad-escape", bad_escape),
        ("mutated-frame", mutated_frame),
        ("mutated-info", mutated_info),
        ("random-info", random_info),
        ("short-info", short_info),
    ]
    for kind, make in kinds:
        for _ in range(PER_KIND if kind != "oversized" else PER_KIND // 10):
            yield kind, make()


def receive(decoder: kiss.KissDecoder, chunk: bytes, outcomes: Counter[str]) -> list[object]:
    """What the hub does with bytes from a TNC; only the codec's errors are caught."""
    packets: list[object] = []
    for item in decoder.feed(chunk):
        if isinstance(item, kiss.KissError):
            outcomes[f"kiss:{item.reason}"] += 1
            continue
        try:
            frame = ax25.decode(item.data)
            packet = aprs.decode(frame, now=NOW)
        except ax25.AX25Error as exc:
            outcomes[f"ax25:{exc.reason}"] += 1
            continue
        except aprs.AprsError as exc:
            outcomes[f"aprs:{exc.reason}"] += 1
            continue
        outcomes[type(packet).__name__] += 1
        # Text goes to the radio log (PostgreSQL text cannot hold NUL).
        assert not any("\x00" in text for text in texts_of(packet))
        if isinstance(packet, aprs.Position):
            assert -90 <= packet.lat <= 90
            assert -180 <= packet.lon <= 180
            assert math.isfinite(packet.lat)
            assert math.isfinite(packet.lon)
        packets.append(packet)
    return packets


def texts_of(packet: object) -> Iterator[str]:
    for field in dataclasses.fields(packet):  # type: ignore[arg-type]
        value = getattr(packet, field.name)
        if isinstance(value, str):
            yield value
        elif dataclasses.is_dataclass(value) and not isinstance(value, ax25.Frame):
            yield from texts_of(value)


def test_fuzz_receive_path() -> None:
    rng = random.Random(SEED)  # noqa: S311 - a reproducible fuzz, not a secret
    outcomes: Counter[str] = Counter()
    sentinel = kiss.data_frame(ax25.encode(SENTINEL))
    count = 0
    decoder = kiss.KissDecoder()
    for index, (_kind, data) in enumerate(inputs(rng)):
        count += 1
        if index % 2:
            # A long-lived decoder fed in random chunks, as from a serial port …
            cut = rng.randrange(len(data) + 1)
            receive(decoder, data[:cut], outcomes)
            receive(decoder, data[cut:], outcomes)
        else:
            # … and a fresh one per input, as after a reconnect.
            receive(kiss.KissDecoder(), data, outcomes)
        if index % 10 == 0:
            # Whatever came before, a FEND and the next good frame come through.
            packets = receive(decoder, b"\xc0" + sentinel, outcomes)
            assert packets[-1:] == [aprs.Status("still here")]
    assert count >= MIN_INPUTS
    # Every layer was reached: errors at each, and packets of several types decoded.
    assert any(key.startswith("kiss:") for key in outcomes)
    assert any(key.startswith("ax25:") for key in outcomes)
    assert any(key.startswith("aprs:") for key in outcomes)
    assert {"Position", "Message", "Ack", "Status", "ThirdParty", "Other"} <= set(outcomes)
