"""The radio channel on a real bus, through a real gateway, to a TNC over TCP played by the test
(the unit's handheld on the far side): orders out as numbered messages, acks, retries, cancels,
duplicates, positions in every format, strangers ignored."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aprslib

from ops.core.bus import Bus, Subscription
from ops.core.channels import (
    CHANNEL_EVENT,
    CancelCopy,
    ChannelInputRejected,
    CopyAcknowledged,
    CopyFailed,
    CopySent,
    CopyTaken,
    SendCopy,
    UnitStatusReported,
    UnitTextReceived,
    cancel_topic,
    send_topic,
)
from ops.core.events import UNIT_POSITION_REPORTED, UnitPositionReported
from radio import aprs, ax25
from radio.channel import RadioChannel, message_number, order_text, split_order, status_of
from radio.events import RADIO_FRAME, SEND_BULLETIN, RadioFrameLogged, SendBulletin
from radio.gateway import Gateway
from tests.component.radio_support import FAST_BACKOFF, TcpTnc, bus_on_loop, frame, running
from tests.polling import eventually

UNIT = "U1"
CALL = "YB0ABC-7"
LAT, LON = -6.2, 106.8166


class Directory:
    """The hub's station directory, from a fixed table."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table

    def unit_for(self, callsign: str) -> str | None:
        return self.table.get(callsign.upper())


@dataclass
class Room:
    bus: Bus
    tnc: TcpTnc
    gateway: Gateway
    channel: RadioChannel
    subscription: Subscription
    seen: list[Any] = field(default_factory=list)

    def events(self) -> list[Any]:
        while (item := self.subscription.get_nowait()) is not None:
            self.seen.append(item.payload)
        return self.seen

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events() if isinstance(e, kind)]

    async def wait(self, kind: type[Any], count: int = 1) -> list[Any]:
        await eventually(lambda: len(self.of(kind)) >= count, message=f"{count} {kind.__name__}")
        return self.of(kind)

    def to_unit(self, number: str | None = None) -> list[aprs.Message]:
        """Messages the TNC put on the air for the unit (optionally of one number)."""
        found = []
        for f in self.tnc.frames:
            packet = aprs.decode(f)
            if (
                isinstance(packet, aprs.Message)
                and packet.addressee == CALL
                and (number is None or packet.number == number)
            ):
                found.append(packet)
        return found

    def acks_to(self, callsign: str) -> list[aprs.Ack]:
        return [
            p
            for f in self.tnc.frames
            if isinstance(p := aprs.decode(f), aprs.Ack) and p.addressee == callsign
        ]

    def unit_says(self, info: bytes, source: str = CALL) -> None:
        self.tnc.send(frame(source, info, destination="APRS", path=("WIDE1-1",)))


@contextlib.asynccontextmanager
async def radio_room(retry: Sequence[float] = (0.3, 0.3, 0.3)) -> AsyncIterator[Room]:
    bus = await bus_on_loop()
    tnc = TcpTnc()
    await tnc.start()
    gateway = Gateway("vhf", tnc.url, backoff=FAST_BACKOFF)
    channel = RadioChannel(
        bus,
        [gateway],
        Directory({CALL: UNIT}),
        callsign="POSKO",
        tocall="APZPSK",
        path=["WIDE1-1"],
        retry=retry,
    )
    try:
        async with (
            bus.subscribe([CHANNEL_EVENT, UNIT_POSITION_REPORTED], name="events") as events,
            running(gateway, bus),
            running(channel, bus),
        ):
            await eventually(lambda: gateway.up and tnc.connected.is_set())
            await eventually(lambda: any(s.name == "channel-radio" for s in bus.subscriptions))
            yield Room(bus, tnc, gateway, channel, events)
    finally:
        await tnc.stop()


def order(
    copy_id: int,
    *,
    title: str = "Flooded house, family on the roof",
    attempt: int = 1,
    message: str = "Take the boat",
) -> SendCopy:
    now = datetime.now(UTC)
    return SendCopy(
        copy_id=copy_id,
        order_id=f"{copy_id:012x}",
        unit_id=UNIT,
        channel="radio",
        address=CALL,
        attempt=attempt,
        message=message,
        case_id=40 + copy_id,
        case_number=f"PSK-{copy_id:07d}",
        case_title=title,
        category="flood",
        priority="critical",
        lat=LAT,
        lon=LON,
        lease_until=now + timedelta(minutes=5),
        deadline=now + timedelta(minutes=5),
    )


def send(bus: Bus, copy: SendCopy) -> None:
    bus.publish(send_topic("radio"), copy, source="dispatch", key=copy.order_id)


def cancel(bus: Bus, copy: SendCopy, reason: str = "acknowledged") -> None:
    bus.publish(
        cancel_topic("radio"),
        CancelCopy(copy.copy_id, copy.order_id, copy.unit_id, "radio", reason),
        source="dispatch",
        key=copy.order_id,
    )


def ack(number: str) -> bytes:
    return aprs.encode_ack("POSKO", number)


def count(predicate: Callable[[], int], at_least: int) -> Callable[[], bool]:
    return lambda: predicate() >= at_least


async def test_an_order_goes_as_numbered_messages_and_the_units_acks_close_it() -> None:
    async with radio_room() as room:
        copy = order(7, title="Flooded house at Jalan Melati 12, family of five on the roof")
        texts = split_order(copy)
        assert len(texts) == 2
        numbers = [message_number(7, 0), message_number(7, 1)]
        send(room.bus, copy)
        await eventually(count(lambda: len(room.to_unit()), 2))
        first = room.to_unit()[:2]
        assert [(m.text, m.number) for m in first] == list(zip(texts, numbers, strict=True))
        assert "#000000 PSK-0000007 CRITICAL" in order_text(copy)
        # An independent parser reads the same addressee, text and number.
        parsed = aprslib.parse(ax25.to_tnc2(room.tnc.frames[0]))
        assert (parsed["addresse"], parsed["message_text"], parsed["msgNo"]) == (
            CALL,
            texts[0],
            numbers[0],
        )
        await room.wait(CopySent)
        for number in numbers:
            room.unit_says(ack(number))
        [acknowledged] = await room.wait(CopyAcknowledged)
        assert acknowledged == CopyAcknowledged(
            copy.order_id, UNIT, "radio", message_id=f"aprs:{CALL}:{numbers[0]}"
        )
        assert room.of(CopyTaken) == [CopyTaken(7, copy.order_id, UNIT, "radio", 1)]
        assert room.channel.on_air == []


async def test_a_lost_message_is_retried_until_the_ack_comes() -> None:
    async with (
        radio_room(retry=(0.2, 0.2, 0.2, 0.2)) as room,
        room.bus.subscribe(RADIO_FRAME, name="log") as log,
    ):
        copy = order(8, title="Short", message="")
        [number] = [message_number(8, 0)]
        assert len(split_order(copy)) == 1
        send(room.bus, copy)
        # The unit misses the first try; it hears the second and acks it.
        await eventually(count(lambda: len(room.to_unit(number)), 2))
        room.unit_says(ack(number))
        await room.wait(CopyAcknowledged)
        lines: list[RadioFrameLogged] = []
        while (item := log.get_nowait()) is not None:
            lines.append(item.payload)
        tries = [line for line in lines if line.direction == "out" and line.number == number]
        assert [line.attempt for line in tries[:2]] == [1, 2]
        assert {(line.unit_id, line.order_id, line.copy_id, line.case_id) for line in tries} == {
            (UNIT, copy.order_id, 8, copy.case_id)
        }
        heard_ack = [line for line in lines if line.direction == "in" and line.kind == "ack"]
        assert heard_ack[0].order_id == copy.order_id


async def test_a_copy_withdrawn_on_the_air_is_tried_no_more() -> None:
    async with radio_room(retry=(0.3, 0.3, 0.3, 0.3)) as room:
        first = order(9, title="Short")
        number = message_number(9, 0)
        send(room.bus, first)
        await eventually(lambda: room.to_unit(number))
        cancel(room.bus, first)  # acknowledged on MQTT meanwhile
        await eventually(lambda: room.channel.on_air == [] and room.gateway.transmit_queue == 0)
        tries = len(room.to_unit(number))
        second = order(10, title="Also short")
        other = message_number(10, 0)
        send(room.bus, second)
        await eventually(count(lambda: len(room.to_unit(other)), 3))  # two retry gaps went by
        assert len(room.to_unit(number)) == tries


async def test_a_reject_fails_the_copy_for_good() -> None:
    async with radio_room() as room:
        copy = order(11, title="Short")
        send(room.bus, copy)
        number = message_number(11, 0)
        await eventually(lambda: room.to_unit(number))
        room.unit_says(aprs.encode_reject("POSKO", number))
        [failed] = await room.wait(CopyFailed)
        assert failed.retryable is False
        assert failed.copy_id == 11
        assert room.channel.on_air == []


async def test_a_duplicate_is_acked_again_and_acted_on_once() -> None:
    async with radio_room() as room:
        status = aprs.encode_message(aprs.Message("POSKO", "EN ROUTE", "7"))
        text = aprs.encode_message(aprs.Message("POSKO", "Road blocked at km 3", "8"))
        for info in (status, status, text, text):
            room.unit_says(info)
        await eventually(count(lambda: len(room.acks_to(CALL)), 4))
        assert [a.number for a in room.acks_to(CALL)] == ["7", "7", "8", "8"]
        digest = hashlib.sha256(b"Road blocked at km 3").hexdigest()[:8]
        assert room.of(UnitStatusReported) == [UnitStatusReported(UNIT, "radio", "en_route")]
        assert room.of(UnitTextReceived) == [
            UnitTextReceived(UNIT, "radio", "Road blocked at km 3", None, f"aprs:{CALL}:8:{digest}")
        ]


async def test_a_status_while_an_order_is_on_the_air_names_the_order() -> None:
    async with radio_room(retry=(5.0,)) as room:
        copy = order(12, title="Short")
        send(room.bus, copy)
        await eventually(room.to_unit)
        room.unit_says(aprs.encode_message(aprs.Message("POSKO", "on scene", "9")))
        [reported] = await room.wait(UnitStatusReported)
        assert reported == UnitStatusReported(UNIT, "radio", "on_scene", copy.order_id)


async def test_positions_in_every_format_reach_the_unit() -> None:
    async with radio_room() as room:
        plain = aprs.encode_position(aprs.Position(LAT, LON))
        compressed = aprs.encode_position(aprs.Position(LAT, LON, format="compressed"))
        destination, mic_e = aprs.encode_mic_e(aprs.Position(LAT, LON, format="mic-e"))
        room.unit_says(plain)
        room.unit_says(compressed)
        room.tnc.send(
            ax25.Frame(destination=destination, source=ax25.Address.parse(CALL), info=mic_e)
        )
        inner = ax25.to_tnc2(frame(CALL, plain, destination="APRS", path=("TCPIP", "POSKO*")))
        room.unit_says(b"}" + inner.encode(), source="YB0IGT")  # relayed by an igate
        positions = await room.wait(UnitPositionReported, 4)
        assert [p.unit_id for p in positions] == [UNIT] * 4
        assert {p.source for p in positions} == {"radio"}
        for p in positions:
            assert abs(p.lat - LAT) < 0.001
            assert abs(p.lon - LON) < 0.001


async def test_a_stranger_is_neither_acked_nor_acted_on() -> None:
    async with radio_room() as room:
        room.unit_says(aprs.encode_message(aprs.Message("POSKO", "help", "3")), source="N0CALL")
        room.unit_says(aprs.encode_position(aprs.Position(LAT, LON)), source="N0CALL")
        room.unit_says(aprs.encode_message(aprs.Message("POSKO", "all good", "4")))
        await eventually(lambda: room.acks_to(CALL))
        assert room.acks_to("N0CALL") == []
        assert room.channel.unknown == 1
        assert room.of(UnitPositionReported) == []
        assert [e.unit_id for e in room.of(UnitTextReceived)] == [UNIT]


async def test_malformed_aprs_is_rejected_with_the_reason() -> None:
    async with radio_room() as room:
        room.unit_says(b"!9999.99N/99999.99E>")
        [rejected] = await room.wait(ChannelInputRejected)
        assert (rejected.channel, rejected.kind, rejected.source) == ("radio", "position", UNIT)


async def test_a_bulletin_goes_to_the_group() -> None:
    async with radio_room() as room:
        room.bus.publish(
            SEND_BULLETIN,
            SendBulletin(group="TEAM", text="Shelter open at the school", requested_by="op"),
            source="test",
        )
        await eventually(lambda: room.tnc.frames)
        packet = aprs.decode(room.tnc.frames[0])
        assert isinstance(packet, aprs.Message)
        assert (packet.addressee, packet.text, packet.number) == (
            "BLN0TEAM",
            "Shelter open at the school",
            None,
        )


def test_status_words() -> None:
    assert status_of("EN ROUTE") == "en_route"
    assert status_of(" on-scene ") == "on_scene"
    assert status_of("out of service") == "out_of_service"
    assert status_of("en route to the school") is None


def test_message_numbers_are_stable_and_short() -> None:
    assert message_number(7, 0) == message_number(7, 0)
    assert message_number(7, 0) != message_number(7, 1)
    assert all(len(message_number(c, p)) <= 5 for c in (0, 1, 10**9, 2**62) for p in range(16))


async def test_a_copy_sent_again_keeps_its_numbers() -> None:
    async with radio_room(retry=(30.0,)) as room:
        copy = order(13, title="Short", message="")
        number = message_number(13, 0)
        send(room.bus, copy)
        await eventually(lambda: room.to_unit(number))
        send(room.bus, order(13, title="Short", message="", attempt=2))  # the lease ran out
        await eventually(count(lambda: len(room.to_unit(number)), 2))
        assert {m.number for m in room.to_unit()} == {number}
        assert [t.attempt for t in room.of(CopyTaken)] == [1, 2]
        room.unit_says(ack(number))
        await room.wait(CopyAcknowledged)


async def test_a_copy_goes_by_the_gateway_that_last_heard_the_unit() -> None:
    bus = await bus_on_loop()
    near, far = TcpTnc(), TcpTnc()
    await near.start()
    await far.start()
    gateways = [
        Gateway(name, tnc.url, backoff=FAST_BACKOFF) for name, tnc in (("a", far), ("b", near))
    ]
    channel = RadioChannel(
        bus,
        gateways,
        Directory({CALL: UNIT}),
        callsign="POSKO",
        tocall="APZPSK",
        path=[],
        retry=[30.0],
    )
    try:
        async with running(gateways[0], bus), running(gateways[1], bus), running(channel, bus):
            await eventually(lambda: all(g.up for g in gateways) and near.connected.is_set())
            await eventually(lambda: any(s.name == "channel-radio" for s in bus.subscriptions))
            near.send(frame(CALL, aprs.encode_position(aprs.Position(LAT, LON))))
            await eventually(lambda: gateways[1].frames_in == 1)
            send(bus, order(14, title="Short", message=""))
            [sent] = await near.wait_frames(1)
            assert isinstance(aprs.decode(sent), aprs.Message)
            assert far.frames == []
    finally:
        await near.stop()
        await far.stop()
