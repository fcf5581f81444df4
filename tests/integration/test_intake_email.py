"""Email intake: a real SMTP client talking to the hub's listener, the case committed before 250."""

from __future__ import annotations

import asyncio
import secrets
import smtplib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope

from db.pool import create_pool
from ops.app import Hub
from ops.core.events import AdapterState
from ops.intake.email import MailHandler
from tests.fixtures.broker import free_port
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

HOST = "127.0.0.1"
MAX_MAIL = 20_000
START_TIMEOUT = 10.0


@pytest.fixture
async def mail_hub(make_hub_config: ConfigFactory) -> AsyncIterator[tuple[Hub, int]]:
    """A hub whose SMTP listener runs on a free port."""
    port = free_port()
    config = make_hub_config(intake={"smtp_port": port, "max_mail_bytes": MAX_MAIL})
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        await eventually(lambda: _listening(hub), timeout=START_TIMEOUT)
        yield hub, port


def _listening(hub: Hub) -> bool:
    status = hub.supervisor.status.get("intake.smtp")
    return status is not None and status.state is AdapterState.RUNNING


def _mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Dewi Lestari <dewi@example.org>")
    message["To"] = "lapor@posko.example"
    message["Subject"] = headers.pop("Subject", "[fire] Asap tebal di pasar")
    message["Message-ID"] = headers.pop("Message_ID", f"<{secrets.token_hex(8)}@example.org>")
    for name, value in headers.items():
        message[name] = value
    message.set_content("Asap tebal keluar dari kios nomor 12.\nMohon segera dikirim bantuan.")
    return message


def _send_raw(port: int, raw: bytes, sender: str = "dewi@example.org") -> tuple[int, str]:
    """One SMTP transaction with a real client; the server's reply to DATA."""
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        client.ehlo("tester.example")
        code, reply = client.mail(sender)
        if code != 250:
            return code, reply.decode()
        client.rcpt("lapor@posko.example")
        code, reply = client.data(raw)
        return code, reply.decode()


async def send(port: int, message: EmailMessage | bytes, **kwargs: Any) -> tuple[int, str]:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    return await asyncio.to_thread(_send_raw, port, raw, **kwargs)


async def _case(hub: Hub, number: str) -> dict[str, Any]:
    async with hub.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM cases WHERE number = $1", number)
    assert row is not None, number
    return dict(row)


async def test_a_mail_becomes_a_case_before_the_250(mail_hub: tuple[Hub, int]) -> None:
    hub, port = mail_hub
    message = _mail()
    secret = secrets.token_hex(16).encode()
    message.add_attachment(
        b"#!/bin/sh\necho " + secret, maintype="application", subtype="x-sh", filename="run.sh"
    )
    code, reply = await send(port, message)
    assert code == 250, reply
    number = reply.rsplit(" ", 1)[-1]
    case = await _case(hub, number)  # committed: readable the moment the client has its 250
    assert case["channel"] == "email"
    assert case["category"] == "fire"
    assert case["title"] == "Asap tebal di pasar"
    assert case["description"].startswith("Asap tebal keluar dari kios nomor 12.")
    assert (case["reporter_name"], case["reporter_contact"]) == ("Dewi Lestari", "dewi@example.org")
    assert case["message_id"] == message["Message-ID"]
    [attachment] = case["attachments"]
    assert attachment["filename"] == "run.sh"
    assert attachment["content_type"] == "application/x-sh"
    assert attachment["stored"] is False
    async with hub.pool.acquire() as conn:  # metadata only: the content is nowhere
        assert not await conn.fetchval(
            "SELECT count(*) FROM cases WHERE cases::text LIKE $1", f"%{secret.decode()}%"
        )


async def test_the_same_message_id_twice_is_one_case(mail_hub: tuple[Hub, int]) -> None:
    hub, port = mail_hub
    message = _mail()
    first = await send(port, message)
    again = await send(port, message)
    assert first[0] == again[0] == 250
    assert "already received" in again[1]
    assert first[1].rsplit(" ", 1)[-1] == again[1].rsplit(" ", 1)[-1]
    async with hub.pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM cases WHERE message_id = $1", message["Message-ID"]
        )
    assert count == 1


async def test_a_mail_without_message_id_is_deduplicated_by_content(
    mail_hub: tuple[Hub, int],
) -> None:
    hub, port = mail_hub
    raw = (
        b"From: warga@example.org\r\nSubject: Pohon tumbang "
        + secrets.token_hex(4).encode()
        + b"\r\n\r\nPohon tumbang menutup jalan.\r\n"
    )
    first = await send(port, raw, sender="warga@example.org")
    again = await send(port, raw, sender="warga@example.org")
    assert (first[0], again[0]) == (250, 250)
    assert "already received" in again[1]
    case = await _case(hub, first[1].rsplit(" ", 1)[-1])
    assert case["message_id"].startswith("<sha256:")
    assert case["category"] == "other"  # no tag: intake.email_category


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"Subject: no sender\r\n\r\nBody\r\n", "From"),
        (b"From: not an address\r\nSubject: x\r\n\r\nBody\r\n", "From"),
        (b"From: a@example.org\r\nSubject: \r\n\r\n\r\n", "no subject and no text"),
        (
            (
                b"From: a@example.org\r\nSubject: x\r\n"
                b"Content-Type: text/plain; charset=klingon\r\n\r\nBody\r\n"
            ),
            "cannot be decoded",
        ),
    ],
)
async def test_a_malformed_mail_is_refused_and_the_listener_goes_on(
    mail_hub: tuple[Hub, int], raw: bytes, reason: str
) -> None:
    hub, port = mail_hub
    async with hub.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM cases")
    code, reply = await send(port, raw, sender="")
    assert code == 550, reply
    assert reason in reply
    async with hub.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM cases") == before
    code, _ = await send(port, _mail())
    assert code == 250


async def test_an_oversized_mail_gets_552_and_the_listener_goes_on(
    mail_hub: tuple[Hub, int],
) -> None:
    hub, port = mail_hub
    message = _mail()
    message.set_content("x" * (MAX_MAIL + 1000))

    def send_big() -> int:
        with smtplib.SMTP(HOST, port, timeout=10) as client:
            try:
                client.sendmail("dewi@example.org", ["lapor@posko.example"], message.as_bytes())
            except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
                return exc.smtp_code
        return 250

    assert await asyncio.to_thread(send_big) == 552
    async with hub.pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT count(*) FROM cases WHERE message_id = $1", message["Message-ID"]
        )
    assert (await send(port, _mail()))[0] == 250


async def test_html_is_reduced_to_text_and_unknown_tags_fall_back(
    mail_hub: tuple[Hub, int],
) -> None:
    hub, port = mail_hub
    message = EmailMessage()
    message["From"] = "rt05@example.org"
    message["Subject"] = "[volcano] Abu vulkanik"
    message.set_content(
        "<p>Hujan <b>abu</b> &amp; pasir</p><script>alert(1)</script>", subtype="html"
    )
    code, reply = await send(port, message)
    assert code == 250, reply
    case = await _case(hub, reply.rsplit(" ", 1)[-1])
    assert case["category"] == "other"
    assert "<" not in case["description"]
    assert "abu" in case["description"]
    assert "& pasir" in case["description"]


async def test_a_database_outage_answers_451_so_the_sender_retries(
    mail_hub: tuple[Hub, int], pg_dsn: str
) -> None:
    hub, _port = mail_hub
    pool = await create_pool(pg_dsn, min_size=0, max_size=1)
    await pool.close()  # every acquire now fails, as when the database is gone
    handler = MailHandler(pool, hub.bus, hub.config.intake, hub.config.cases)
    envelope = Envelope()
    envelope.mail_from = "dewi@example.org"
    envelope.original_content = _mail().as_bytes()
    reply = await handler.handle_DATA(None, None, envelope)  # type: ignore[arg-type]
    assert reply.startswith("451 4.3.0")


async def test_nul_characters_are_removed_and_the_mail_becomes_a_case(
    mail_hub: tuple[Hub, int],
) -> None:
    hub, port = mail_hub
    message = _mail(Subject="[fire] Asap\x00 di pasar")
    message.set_content("Asap\x00 tebal di kios 12.", cte="base64")
    code, reply = await send(port, message)
    assert code == 250, reply
    case = await _case(hub, reply.rsplit(" ", 1)[-1])
    assert case["title"] == "Asap di pasar"
    assert case["description"] == "Asap tebal di kios 12."
    raw = (
        b"From: warga@example.org\r\nSubject: Jalan\x00 rusak\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nLubang\x00 besar\r\n"
    )
    code, reply = await send(port, raw, sender="warga@example.org")
    assert code == 250, reply
    case = await _case(hub, reply.rsplit(" ", 1)[-1])
    assert (case["title"], case["description"]) == ("Jalan rusak", "Lubang besar")
