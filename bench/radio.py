"""Radio frames per second through the codec, beside a raw read of the same bytes.

One KISS byte stream of mixed APRS traffic (uncompressed, compressed and Mic-E positions,
numbered messages, acks, status; a path of two digipeaters) is read in 1 KiB chunks, as from a
serial port or a TCP socket. Figures, each beside a baseline measured in the same run on the
same bytes:

- ``radio_codec_frames_per_s``: frames turned into APRS packets (``KissDecoder`` → ``ax25.decode``
  → ``aprs.decode``), beside a raw read that only cuts the stream on FEND;
- ``radio_kiss_frames_per_s``: the KISS stage alone (unescaping, type byte, bounds), beside the
  same raw read;
- ``radio_adapter_frames_per_s_pty``: frames written into a pty and decoded by a running gateway
  adapter up to its callback, beside a raw read of the same bytes from the same kind of pty
  through the same serial transport (``bench/radio_adapter.py``).

A 1200-baud channel carries about four such frames per second, so either figure is a ceiling
far above the air; the ratio says what each layer costs over touching the bytes at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.radio_adapter import adapter_figures
from bench.report import Figure, emit, parser
from radio import aprs, ax25, kiss

CHUNK = 1024
ROUNDS = 3
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def traffic(frames: int) -> tuple[bytes, int]:
    """A KISS stream of ``frames`` frames of mixed APRS traffic, and its frame count."""
    source = ax25.Address("YB0ABC", 9)
    path = (ax25.Address("WIDE1", 1, repeated=True), ax25.Address("WIDE2", 1))
    tocall = ax25.Address("APZPSK")
    moment = datetime(2026, 12, 1, 11, 58, tzinfo=UTC)
    mic_e_destination, mic_e_info = aprs.encode_mic_e(
        aprs.Position(-6.2, 106.8, "/", ">", "unit 7", course=251, speed=20, altitude=35)
    )
    samples = [
        ax25.Frame(tocall, source, path, info)
        for info in (
            aprs.encode_position(aprs.Position(-6.2, 106.8, comment="patrol", course=88, speed=36)),
            aprs.encode_position(
                aprs.Position(-6.21, 106.81, timestamp=moment, messaging=True, altitude=40)
            ),
            aprs.encode_position(
                aprs.Position(-6.22, 106.82, format="compressed", course=90, speed=12)
            ),
            aprs.encode_message(aprs.Message("POSKO", "On scene, two injured", "12")),
            aprs.encode_ack("POSKO", "A7"),
            aprs.encode_status("Available"),
        )
    ]
    samples.append(ax25.Frame(mic_e_destination, source, path, mic_e_info))
    encoded = [kiss.data_frame(ax25.encode(frame)) for frame in samples]
    return b"".join(encoded[index % len(encoded)] for index in range(frames)), frames


def chunks(stream: bytes) -> list[bytes]:
    return [stream[start : start + CHUNK] for start in range(0, len(stream), CHUNK)]


def raw_read(pieces: list[bytes]) -> int:
    """The floor: cut the stream into frames on FEND and nothing else."""
    count = 0
    carry = b""
    for piece in pieces:
        parts = (carry + piece).split(b"\xc0")
        carry = parts.pop()
        count += sum(1 for part in parts if part)
    return count


def kiss_only(pieces: list[bytes]) -> int:
    decoder = kiss.KissDecoder()
    count = 0
    for piece in pieces:
        count += sum(1 for item in decoder.feed(piece) if isinstance(item, kiss.KissFrame))
    return count


def full_codec(pieces: list[bytes]) -> int:
    decoder = kiss.KissDecoder()
    count = 0
    for piece in pieces:
        for item in decoder.feed(piece):
            if isinstance(item, kiss.KissFrame):
                aprs.decode(ax25.decode(item.data), now=NOW)
                count += 1
    return count


def rate(read: Callable[[list[bytes]], int], pieces: list[bytes], expected: int) -> float:
    """Frames per second of one pass; every frame must come out."""
    start = time.perf_counter()
    count = read(pieces)
    elapsed = time.perf_counter() - start
    if count != expected:
        raise SystemExit(f"{read.__name__} read {count} frames, expected {expected}")
    return count / elapsed


def main(quick: bool) -> list[Figure]:
    stream, frames = traffic(20_000 if quick else 200_000)
    pieces = chunks(stream)
    raw_rates, kiss_rates, codec_rates = [], [], []
    for _ in range(ROUNDS):
        raw_rates.append(rate(raw_read, pieces, frames))
        kiss_rates.append(rate(kiss_only, pieces, frames))
        codec_rates.append(rate(full_codec, pieces, frames))
    return [
        Figure(
            name="radio_codec_frames_per_s",
            value=max(codec_rates),
            unit="frames/s",
            baseline=max(raw_rates),
            higher_is_better=True,
        ),
        Figure(
            name="radio_kiss_frames_per_s",
            value=max(kiss_rates),
            unit="frames/s",
            baseline=max(raw_rates),
            higher_is_better=True,
        ),
        *asyncio.run(adapter_figures(quick)),
    ]


if __name__ == "__main__":
    args = parser(__doc__ or "").parse_args()
    emit(main(args.quick), as_json=args.json)
