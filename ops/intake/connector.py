"""The external national complaint system (SP4N-LAPOR style), pulled over HTTP JSON.

Every ``intake.connector_interval`` seconds the connector ``GET``s ``{connector_url}/records``,
expecting ``{"records": [...]}`` (or a bare list) of objects with at least ``id`` and a
``description`` or ``title``; optional ``category`` (a Posko category code, anything else
becomes ``other``), ``priority``, ``lat``/``lon``, ``address``, ``region``, ``reporter_name``,
``reporter_contact``. Each record becomes a case once: the external id is unique per source, so
re-reading a record changes nothing. Then it pushes every changed status back with ``POST
{connector_url}/records/{id}/status`` and ``{"status": ..., "case_number": ...}`` (the last
pushed status is kept on the case). Pushes do not wait on the fetch: when fetching fails they
still go before the connector backs off. A push that times out, cannot connect or gets 5xx, 408
or 429 is retried with backoff; one the remote refuses (another 4xx) is tried
``MAX_REFUSED_ATTEMPTS`` times, then given up as failed (logged once and counted; the case keeps
the status the remote has not heard, and a later status of that case is pushed afresh).

A response that is not JSON, not a list of records or larger than ``MAX_RESPONSE_BYTES`` puts
the connector in backoff (nothing is written); a single bad record (a missing id, a value out of
range, text with NUL characters) is skipped with a warning and counted, and the others go in.
401/403 stop it with an alarm. ``POSKO_INTAKE__CONNECTOR_TOKEN``, when set, is sent as a bearer
token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from db import cases as case_rows
from db import categories
from db.pool import Pool
from ops.cases.errors import InvalidReport
from ops.cases.intake import IncomingReport, submit_report
from ops.cases.model import MAX_DESCRIPTION, MAX_SHORT, MAX_TITLE, PRIORITIES, CaseText
from ops.core.adapter import AdapterContext
from ops.core.bus import Bus
from ops.core.config import CasesConfig, IntakeConfig
from ops.core.errors import AdapterAuthError, AdapterNotReady

_LOGGER = logging.getLogger(__name__)

CHANNEL = "external"
MAX_RESPONSE_BYTES = 8 * 1_048_576
FALLBACK_CATEGORY = "other"
MAX_REMEMBERED = 10_000  # bad records remembered so each is warned about once
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_ERROR = 400
HTTP_SERVER_ERROR = 500
HTTP_RETRYABLE = frozenset({408, 429})  # a 4xx that means "not now", not "never"
MAX_REFUSED_ATTEMPTS = 3  # a push the remote refuses is given up after this many tries
MAX_PUSH_BACKOFF = 900.0  # seconds between tries of one push at most
PUSH_BATCH = 100  # pending statuses looked at per cycle, on top of those held back


class ConnectorError(AdapterNotReady):
    """The external system answered with something unusable; retried with backoff."""


@dataclass(slots=True)
class _PushTrouble:
    """Why and until when one status push is held back."""

    attempts: int = 0
    refused: int = 0
    not_before: float = 0.0
    failed: bool = False


class ExternalRecord(BaseModel):
    """One record of the external system (unknown keys are ignored: it is their format)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: CaseText = Field(min_length=1, max_length=200)
    title: CaseText | None = Field(default=None, max_length=MAX_TITLE)
    description: CaseText = Field(default="", max_length=MAX_DESCRIPTION)
    category: CaseText | None = Field(default=None, max_length=64)
    priority: CaseText | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    address: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    region: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    reporter_name: CaseText | None = Field(default=None, max_length=MAX_SHORT)
    reporter_contact: CaseText | None = Field(default=None, max_length=MAX_SHORT)

    @field_validator("priority")
    @classmethod
    def _known_priority(cls, value: str | None) -> str | None:
        if value is not None and value not in PRIORITIES:
            raise ValueError(f"must be one of {', '.join(PRIORITIES)}")
        return value


class ExternalConnector:
    """Polls the external system, files its records as cases, pushes statuses back."""

    name = "intake.connector"

    def __init__(self, pool: Pool, bus: Bus, intake: IntakeConfig, cases: CasesConfig) -> None:
        if intake.connector_url is None:
            raise ValueError("intake.connector_url is not set")
        self._pool = pool
        self._bus = bus
        self._cases = cases
        self._base = intake.connector_url.rstrip("/")
        self._source = intake.connector_source
        self._interval = intake.connector_interval
        self._timeout = aiohttp.ClientTimeout(total=intake.connector_timeout)
        token = intake.connector_token
        self._headers = {"Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self.heartbeat_interval: float | None = intake.connector_interval + (
            intake.connector_timeout * 2
        )
        self.polls = 0
        self.pushed = 0
        self.push_failures = 0  # pushes given up after the remote refused them
        self._warned: set[bytes] = set()
        self._trouble: dict[tuple[int, str], _PushTrouble] = {}
        self._clock: Callable[[], float] = time.monotonic

    async def run(self, ctx: AdapterContext) -> None:
        """Poll and push every interval until cancelled; raise on an unusable answer."""
        async with aiohttp.ClientSession(timeout=self._timeout, headers=self._headers) as http:
            while True:
                try:
                    created, skipped = await self.poll(http)
                except ConnectorError:
                    await self.push(http)  # a failing fetch does not hold the statuses back
                    raise
                pushed = await self.push(http)
                self.polls += 1
                ctx.heartbeat()
                if created or skipped or pushed:
                    ctx.logger.info(
                        "external: %d new, %d skipped, %d statuses pushed", created, skipped, pushed
                    )
                await asyncio.sleep(self._interval)

    async def poll(self, http: aiohttp.ClientSession) -> tuple[int, int]:
        """Fetch the records and file the new ones; return (created, skipped)."""
        records = await self._fetch(http)
        async with self._pool.acquire() as conn:
            known = {row.code for row in await categories.list_categories(conn, active_only=True)}
        created = skipped = 0
        for index, raw in enumerate(records):
            try:
                record = ExternalRecord.model_validate(raw)
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(part) for part in first["loc"]) or "record"
                self._skip(raw, "external record #%d skipped: %s: %s", index, where, first["msg"])
                skipped += 1
                continue
            try:
                ref = await submit_report(
                    self._pool, self._bus, self._report(record, known), config=self._cases
                )
            except InvalidReport as exc:
                self._skip(raw, "external record %s skipped: %s", record.id, exc.message)
                skipped += 1
                continue
            except asyncpg.DataError as exc:  # a value the database cannot hold: this record only
                self._skip(raw, "external record %s skipped: %s", record.id, exc)
                skipped += 1
                continue
            created += int(ref.created)
        return created, skipped

    async def push(self, http: aiohttp.ClientSession) -> int:
        """Tell the external system every status it has not heard yet; return how many."""
        limit = PUSH_BATCH + len(self._trouble)  # the held-back ones never crowd the rest out
        async with self._pool.acquire() as conn:
            pending = await case_rows.pending_pushes(conn, self._source, limit)
        if len(pending) < limit:  # every pending push is in view: forget the settled ones
            keys = {(item.id, item.status) for item in pending}
            self._trouble = {k: v for k, v in self._trouble.items() if k in keys}
        now = self._clock()
        pushed = 0
        for item in pending:
            key = (item.id, item.status)
            trouble = self._trouble.get(key)
            if trouble is not None and (trouble.failed or trouble.not_before > now):
                continue
            url = f"{self._base}/records/{quote(item.external_id, safe='')}/status"
            body = {"status": item.status, "case_number": item.number}
            try:
                async with http.post(url, json=body) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._retry_later(key, now, "status push for %s failed: %s", item.number, exc)
                break  # the link is down: the rest waits for the next cycle
            if status < HTTP_ERROR:
                async with self._pool.acquire() as conn:
                    await case_rows.mark_pushed(conn, item.id, item.status)
                self._trouble.pop(key, None)
                pushed += 1
            elif status >= HTTP_SERVER_ERROR or status in HTTP_RETRYABLE:
                self._retry_later(key, now, "status push for %s: HTTP %d", item.number, status)
            else:
                self._refused(key, now, item.number, item.status, status)
        self.pushed += pushed
        return pushed

    def _retry_later(self, key: tuple[int, str], now: float, message: str, *args: object) -> None:
        """Hold one push back, longer each time (WARNING the first time, then DEBUG)."""
        trouble = self._back_off(key, now)
        _LOGGER.log(logging.WARNING if trouble.attempts == 1 else logging.DEBUG, message, *args)

    def _refused(
        self, key: tuple[int, str], now: float, number: str, value: str, code: int
    ) -> None:
        """Count a refusal; past the bound the push is given up, and only that is logged."""
        trouble = self._back_off(key, now)
        trouble.refused += 1
        if trouble.refused < MAX_REFUSED_ATTEMPTS:
            _LOGGER.debug("status push for %s refused: HTTP %d", number, code)
            return
        trouble.failed = True
        self.push_failures += 1
        _LOGGER.warning(
            "status push for %s (%s) given up after %d refusals, the last HTTP %d",
            number,
            value,
            trouble.refused,
            code,
        )

    def _back_off(self, key: tuple[int, str], now: float) -> _PushTrouble:
        trouble = self._trouble.get(key)
        if trouble is None:
            if len(self._trouble) >= MAX_REMEMBERED:
                self._trouble.clear()
            trouble = self._trouble[key] = _PushTrouble()
        trouble.attempts += 1
        delay = self._interval * 2 ** (trouble.attempts - 1)
        trouble.not_before = now + min(MAX_PUSH_BACKOFF, delay)
        return trouble

    def _skip(self, raw: Any, message: str, *args: object) -> None:
        """Warn about a bad record once; later polls that see it again log at DEBUG."""
        key = hashlib.sha256(repr(raw).encode()).digest()
        level = logging.DEBUG if key in self._warned else logging.WARNING
        if len(self._warned) >= MAX_REMEMBERED:
            self._warned.clear()
        self._warned.add(key)
        _LOGGER.log(level, message, *args)

    def _report(self, record: ExternalRecord, known: set[str]) -> IncomingReport:
        category = record.category if record.category in known else FALLBACK_CATEGORY
        description = record.description
        if record.category and category != record.category:
            description += f"\n\n[external category: {record.category[:64]}]"
        return IncomingReport(
            channel=CHANNEL,
            category=category,
            title=record.title,
            description=description.strip(),
            priority=record.priority,
            priority_reason=None if record.priority is None else f"set by {self._source}",
            lat=record.lat,
            lon=record.lon,
            address=record.address,
            region=record.region,
            reporter_name=record.reporter_name,
            reporter_contact=record.reporter_contact,
            external_source=self._source,
            external_id=record.id,
            actor=f"{CHANNEL}:{self._source}",
        )

    async def _fetch(self, http: aiohttp.ClientSession) -> list[Any]:
        url = f"{self._base}/records"
        try:
            async with http.get(url) as response:
                if response.status in {HTTP_UNAUTHORIZED, HTTP_FORBIDDEN}:
                    raise AdapterAuthError(f"{url} refused our credentials: {response.status}")
                if response.status >= HTTP_ERROR:
                    raise ConnectorError(f"{url} answered HTTP {response.status}")
                raw = await _read_capped(response, url, MAX_RESPONSE_BYTES)
        except aiohttp.ClientError as exc:
            raise ConnectorError(f"{url} unreachable: {exc}") from exc
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ConnectorError(f"{url} did not answer JSON") from None
        if isinstance(data, dict):
            data = data.get("records")
        if not isinstance(data, list):
            raise ConnectorError(f"{url} did not answer a list of records")
        return data


async def _read_capped(response: aiohttp.ClientResponse, url: str, limit: int) -> bytes:
    """The whole body, however it is chunked; ConnectorError past ``limit`` bytes."""
    too_large = f"{url} answered more than {limit} bytes"
    if response.content_length is not None and response.content_length > limit:
        raise ConnectorError(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            raise ConnectorError(too_large)
        chunks.append(chunk)
    return b"".join(chunks)
