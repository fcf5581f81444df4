"""Email intake: an SMTP listener (aiosmtpd, on the hub's own loop) that turns a mail into a case.

The subject becomes the title, the text part the description, the sender the reporter. A
``[category]`` tag at the start of the subject (``[fire] Kebakaran di pasar``) picks the
category; otherwise ``intake.email_category``. The listener answers 250 only after the case is
committed; a mail with the same Message-ID (or, without one, the same bytes) is one case.

Nothing in a mail is executed or rendered: an HTML-only body is reduced to its text, and
attachments are dropped, keeping only metadata (file name, content type, size, SHA-256) on the
case. Mails over ``intake.max_mail_bytes`` get 552; a mail that cannot be read (no sender, no
text, undecodable) gets 550 with the reason; a database outage gets 451 so the sender retries.
NUL characters, which the database cannot store and which carry no meaning in text, are removed
from everything read out of a mail rather than refusing the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from db.pool import Pool
from ops.cases.errors import InvalidReport
from ops.cases.intake import CaseRef, IncomingReport, submit_report
from ops.cases.model import MAX_DESCRIPTION, MAX_SHORT, MAX_TITLE
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.config import CasesConfig, IntakeConfig

_LOGGER = logging.getLogger(__name__)

CHANNEL = "email"
SESSION_TIMEOUT = 60.0
MAX_ATTACHMENTS = 20
_TAG = re.compile(r"^\s*\[([a-z_]{1,32})\]\s*", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
_SAFE_NAME = re.compile(r"[^\w.\- ]+")


class MailRefused(ValueError):  # noqa: N818 - reads as the condition it reports
    """A mail that cannot become a case; the message is the SMTP reason."""


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """What a mail says, before it is a report."""

    message_id: str
    subject: str
    text: str
    sender_name: str | None
    sender_address: str
    tag: str | None
    attachments: tuple[dict[str, Any], ...]


def parse_mail(content: bytes, envelope_from: str | None) -> ParsedMail:
    """Read a mail; raise MailRefused with the reason when it cannot become a case."""
    mail = _parse(content, envelope_from)
    return ParsedMail(
        message_id=_no_nul(mail.message_id),
        subject=_no_nul(mail.subject),
        text=_no_nul(mail.text),
        sender_name=None if mail.sender_name is None else _no_nul(mail.sender_name) or None,
        sender_address=_no_nul(mail.sender_address),
        tag=mail.tag,
        attachments=tuple(
            {k: _no_nul(v) if isinstance(v, str) else v for k, v in item.items()}
            for item in mail.attachments
        ),
    )


def _parse(content: bytes, envelope_from: str | None) -> ParsedMail:
    message = BytesParser(policy=email.policy.default).parsebytes(content)
    if not isinstance(message, EmailMessage):  # pragma: no cover - the default policy's class
        raise MailRefused("unreadable message")
    name, address = _sender(message, envelope_from)
    subject = " ".join(str(message.get("Subject", "")).split())
    tag = None
    if match := _TAG.match(subject):
        tag = match[1].lower()
        subject = subject[match.end() :]
    text = _text(message)
    if not subject and not text:
        raise MailRefused("the message has no subject and no text")
    message_id = str(message.get("Message-ID", "")).strip()[:MAX_SHORT]
    if not message_id:
        message_id = "<sha256:" + hashlib.sha256(content).hexdigest() + ">"
    return ParsedMail(
        message_id=message_id,
        subject=subject[:MAX_TITLE],
        text=text[:MAX_DESCRIPTION],
        sender_name=name,
        sender_address=address,
        tag=tag,
        attachments=_attachments(message),
    )


class MailHandler:
    """aiosmtpd handler: one DATA = one case, committed before the 250."""

    def __init__(self, pool: Pool, bus: Bus, intake: IntakeConfig, cases: CasesConfig) -> None:
        self._pool = pool
        self._bus = bus
        self._intake = intake
        self._cases = cases

    async def handle_DATA(  # noqa: N802, PLR0911 - aiosmtpd's hook; one reply per outcome
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Store the mail as a case and answer with the outcome."""
        del server, session
        content = envelope.original_content or b""
        try:
            mail = parse_mail(content, _str(envelope.mail_from))
        except MailRefused as exc:
            _LOGGER.info("mail refused: %s", exc)
            return f"550 5.6.0 {exc}"
        except Exception:  # an odd mail must never take the listener down
            _LOGGER.exception("mail could not be parsed")
            return "550 5.6.0 the message could not be parsed"
        try:
            ref = await self._submit(mail, mail.tag or self._intake.email_category)
        except InvalidReport as exc:
            if exc.field != "category" or mail.tag is None:
                return f"550 5.6.0 {exc.message}"
            try:
                ref = await self._submit(mail, self._intake.email_category)
            except InvalidReport as again:
                return f"550 5.6.0 {again.message}"
        except asyncpg.DataError as exc:  # retrying cannot help: refuse it for good
            _LOGGER.info("mail refused by the database: %s", exc)
            return "550 5.6.0 the message holds data that cannot be stored"
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _LOGGER.warning("mail not stored, sender will retry: %s", exc)
            return "451 4.3.0 cannot store the message now; try again later"
        if not ref.created:
            return f"250 2.0.0 already received as case {ref.number}"
        _LOGGER.info("mail became case %s", ref.number)
        return f"250 2.0.0 received as case {ref.number}"

    async def _submit(self, mail: ParsedMail, category: str) -> CaseRef:
        report = IncomingReport(
            channel=CHANNEL,
            category=category,
            title=mail.subject or None,
            description=mail.text,
            reporter_name=mail.sender_name,
            reporter_contact=mail.sender_address,
            message_id=mail.message_id,
            attachments=mail.attachments,
            actor=CHANNEL,
        )
        return await submit_report(self._pool, self._bus, report, config=self._cases)


class SmtpIntake:
    """The listener as a supervised adapter; ``port`` is the bound port once running."""

    name = "intake.smtp"
    heartbeat_interval: float | None = None

    def __init__(self, pool: Pool, bus: Bus, intake: IntakeConfig, cases: CasesConfig) -> None:
        if intake.smtp_port is None:
            raise ValueError("intake.smtp_port is not set")
        self._handler = MailHandler(pool, bus, intake, cases)
        self._host = intake.smtp_host
        self._wanted_port = intake.smtp_port
        self._max_bytes = intake.max_mail_bytes
        self._sessions: set[SMTP] = set()
        self.port: int | None = None
        self.listening = asyncio.Event()
        # aiosmtpd logs every SMTP command at INFO; the hub logs each mail's outcome itself.
        logging.getLogger("mail.log").setLevel(logging.WARNING)

    async def run(self, ctx: AdapterContext) -> None:
        """Listen until cancelled; close every open session on the way out."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self._session, self._host, self._wanted_port)
        try:
            self.port = int(server.sockets[0].getsockname()[1])
            ctx.logger.info("SMTP intake listening on %s:%d", self._host, self.port)
            ctx.heartbeat()
            self.listening.set()
            await server.serve_forever()
        finally:
            self.listening.clear()
            server.close()
            for session in tuple(self._sessions):
                if session.transport is not None:
                    session.transport.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await server.wait_closed()

    def _session(self) -> SMTP:
        session = _TrackedSMTP(
            self._handler,
            data_size_limit=self._max_bytes,
            hostname="posko",
            ident="Posko intake",
            timeout=SESSION_TIMEOUT,
            loop=asyncio.get_running_loop(),
        )
        session.sessions = self._sessions
        self._sessions.add(session)
        return session


class _TrackedSMTP(SMTP):
    sessions: set[SMTP]

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.discard(self)
        super().connection_lost(error)


def _sender(message: EmailMessage, envelope_from: str | None) -> tuple[str | None, str]:
    raw = str(message.get("From", "") or "")
    pairs = [(name, addr) for name, addr in getaddresses([raw]) if "@" in addr]
    if pairs:
        name, address = pairs[0]
    elif envelope_from and "@" in envelope_from:
        name, address = "", envelope_from
    else:
        raise MailRefused("the message has no valid From address")
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):
        raise MailRefused("the message has no valid From address") from None
    return (name.strip()[:MAX_SHORT] or None), address.strip()[:MAX_SHORT]


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeError, ValueError) as exc:
        raise MailRefused(f"the text cannot be decoded ({type(exc).__name__})") from None
    if not isinstance(content, str):
        return ""
    if body.get_content_subtype() == "html":
        content = html.unescape(_TAGS.sub(" ", content))  # shown as text, never rendered
    return "\n".join(line.rstrip() for line in content.strip().splitlines())


def _attachments(message: EmailMessage) -> tuple[dict[str, Any], ...]:
    found: list[dict[str, Any]] = []
    for part in message.iter_attachments():
        if len(found) >= MAX_ATTACHMENTS:
            break
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        name = _SAFE_NAME.sub("_", part.get_filename() or "")[:200] or None
        found.append(
            {
                "filename": name,
                "content_type": part.get_content_type(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "stored": False,
            }
        )
    return tuple(found)


def _no_nul(text: str) -> str:
    return text.replace("\x00", "")


def _str(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
