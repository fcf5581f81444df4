"""The MQTT device bus: device topics on the broker mapped onto bus events, and commands back.

Topics, under the configured prefix (see docs/devices.md for the payloads):

- ``devices/{id}/status`` — retained ``online``/``offline``, the device's last will →
  ``DEVICE_REPORTED`` with ``online`` set;
- ``devices/{id}/telemetry`` — a JSON object with ``ts`` and the device's figures →
  ``DEVICE_REPORTED`` with the figures (proof of life);
- ``devices/{id}/config`` — retained JSON self-description → ``DEVICE_ANNOUNCED``;
- ``devices/{id}/cmd`` — hub → device, ``{"id", "command", "args", "ts"}``, from
  ``DEVICE_COMMAND_REQUESTED``;
- ``devices/{id}/cmd/reply`` — device → hub, ``{"id", "ok", "result" | "error"}`` →
  ``DEVICE_COMMAND_REPLIED`` (a command without a reply in time is answered with a timeout).

The handlers run inline in the hub's MQTT receive loop, so they only parse, check and publish on
the bus. Bad input — a malformed id, a payload over the size limit, text that is not JSON, wrong
types, a reply nobody asked for, a storm from one device — is dropped, counted per source and
reason, and logged once per source and reason; it never raises, and other devices are unaffected.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any, Final

from ops.core.adapter import AdapterContext
from ops.core.bus import Bus, Overflow
from ops.core.errors import AdapterNotReady
from ops.core.events import (
    DEVICE_ANNOUNCED,
    DEVICE_COMMAND_REPLIED,
    DEVICE_COMMAND_REQUESTED,
    DEVICE_REPORTED,
    DeviceAnnounced,
    DeviceCommandReplied,
    DeviceCommandRequested,
    DeviceReported,
    Figure,
)
from ops.core.mqtt import MqttMessage, MqttPort
from ops.core.ratelimit import RateLimiter
from ops.core.warnonce import WarnOnce

_LOGGER = logging.getLogger(__name__)

ADAPTER_NAME: Final = "mqtt-devices"
DEFAULT_KIND: Final = "mqtt_sensor"
DEFAULT_MAX_PAYLOAD = 16_384
DEFAULT_RATE = 10.0
DEFAULT_COMMAND_TIMEOUT = 10.0
MAX_FIGURES = 64
"""Figures in one message, and distinct figure names one device may use."""
MAX_TEXT = 200
MAX_TAGS = 32
#: Nesting of a config's ``attributes`` or a reply's ``result`` (objects and lists).
MAX_DEPTH = 8
#: The last epoch second of year 9999, the end of ISO 8601's four-digit years.
MAX_TS = 253_402_300_799
#: Distinct sources whose rejections are counted apart; beyond this they share one "other" row.
MAX_SOURCES = 10_000
OTHER_SOURCE: Final = "(other)"
DEVICE_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
KIND: Final = re.compile(r"^[a-z0-9_]{1,64}$")
STATUS_PAYLOADS: Final = {b"online": True, b"offline": False}
# PostgreSQL's jsonb refuses NUL and asyncpg cannot encode lone surrogates, so such text would
# fail every later write of the device; other control characters have no place in a device's
# words either. Texts may carry tabs and line breaks, names and labels nothing of the sort.
BAD_IN_TEXT: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
BAD_IN_NAME: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


class Rejected(ValueError):  # noqa: N818 - reads as the message's fate
    """A message that is dropped: ``reason`` is the counter, the message says what was wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DeviceBus:
    """The adapter-side mapping of the device topics; ``run`` carries commands to devices."""

    name: str = ADAPTER_NAME
    heartbeat_interval: float | None = None

    def __init__(
        self,
        link: MqttPort,
        bus: Bus,
        *,
        share_group: str | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        rate: float = DEFAULT_RATE,
        burst: float | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.bus = bus
        self.share_group = share_group
        self.max_payload = max_payload
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, 2 * rate)
        self.command_timeout = command_timeout
        self.accepted = 0
        self.rejected: collections.Counter[tuple[str, str]] = collections.Counter()
        self._clock = clock
        self._base = link.topic("devices") + "/"
        self._kinds: dict[str, str] = {}
        self._figure_names: dict[str, set[str]] = {}
        # Made-up ids beyond this many are a flood: the stalest are forgotten, not grown.
        self._limiter = RateLimiter(rate, self.burst, max_keys=MAX_SOURCES * 10, clock=clock)
        self._warn = WarnOnce(_LOGGER, MAX_SOURCES)
        self._pending: dict[str, tuple[str, float]] = {}
        self._attached = False

    # -- wiring -----------------------------------------------------------------------------------

    def attach(self) -> None:
        """Register the device topics on the link (it re-subscribes after every reconnect).

        Telemetry goes through the shared subscription when a group is configured; status and
        config stay ordinary subscriptions, because brokers never hand retained messages to a
        shared subscription and every hub needs each device's last status.
        """
        if self._attached:
            return
        self._attached = True
        telemetry = self.link.topic("devices", "+", "telemetry")
        if self.share_group:
            telemetry = f"$share/{self.share_group}/{telemetry}"
        self.link.subscribe(self.link.topic("devices", "+", "status"), self._on_status, qos=1)
        self.link.subscribe(telemetry, self._on_telemetry, qos=0)
        self.link.subscribe(self.link.topic("devices", "+", "config"), self._on_config, qos=1)
        self.link.subscribe(self.link.topic("devices", "+", "cmd", "reply"), self._on_reply, qos=1)

    async def run(self, ctx: AdapterContext) -> None:
        """Send requested commands to devices and answer the ones that time out."""
        self.attach()
        async with self.bus.subscribe(
            DEVICE_COMMAND_REQUESTED, maxsize=1000, overflow=Overflow.ALARM, name=ADAPTER_NAME
        ) as requests:
            ctx.heartbeat()
            expiry = asyncio.create_task(self._expire_commands(), name=f"{ADAPTER_NAME}:expiry")
            try:
                async for envelope in requests:
                    await self._send_command(envelope.payload)
            finally:
                expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await expiry

    # -- inbound ----------------------------------------------------------------------------------

    def _on_status(self, message: MqttMessage) -> None:
        self._guard(message, "status", self._status)

    def _on_telemetry(self, message: MqttMessage) -> None:
        self._guard(message, "telemetry", self._telemetry)

    def _on_config(self, message: MqttMessage) -> None:
        self._guard(message, "config", self._config)

    def _on_reply(self, message: MqttMessage) -> None:
        self._guard(message, "cmd/reply", self._reply)

    def _guard(
        self, message: MqttMessage, suffix: str, handle: Callable[[str, bytes, bool], None]
    ) -> None:
        source = "?"
        try:
            source = self._device_id(message.topic, suffix)
            if len(message.payload) > self.max_payload:
                raise Rejected(  # noqa: TRY301 - one path for every rejection
                    "too_large", f"{len(message.payload)} bytes (limit {self.max_payload})"
                )
            # Retained messages replayed on (re)subscribe are the broker's, not a storm.
            if not message.retain and not self._take(source):
                raise Rejected(  # noqa: TRY301
                    "rate_limited", f"more than {self.rate:g} messages/s"
                )
            handle(source, message.payload, message.retain)
        except Rejected as exc:
            self._reject(source, exc, message.topic)
        else:
            self.accepted += 1

    def _status(self, device_id: str, payload: bytes, retain: bool) -> None:
        del retain
        if not payload:
            return  # a cleared retained status: nothing to report
        online = STATUS_PAYLOADS.get(payload.strip().lower())
        if online is None:
            raise Rejected("bad_status", "status must be 'online' or 'offline'")
        self._report(device_id, {}, online)

    def _telemetry(self, device_id: str, payload: bytes, retain: bool) -> None:
        del retain
        data = _json_object(payload)
        _check_ts(data.pop("ts", None))
        if len(data) > MAX_FIGURES:
            raise Rejected("too_many_figures", f"more than {MAX_FIGURES} figures")
        figures: dict[str, Figure] = {}
        for key, value in data.items():
            figures[key] = _figure(key, value)
        self._report(device_id, self._known_figures(device_id, figures), None)

    def _config(self, device_id: str, payload: bytes, retain: bool) -> None:
        del retain
        if not payload:
            return  # an emptied retained config: the device withdrew its description
        data = _json_object(payload)
        kind = data.get("kind", DEFAULT_KIND)
        if not isinstance(kind, str) or not KIND.fullmatch(kind):
            raise Rejected("wrong_type", "kind must be lower-case letters, digits or _")
        tags = data.get("tags", [])
        commands = data.get("commands", [])
        attributes = data.get("attributes", {})
        if not _texts(tags, MAX_TAGS) or not _texts(commands, MAX_TAGS):
            raise Rejected("wrong_type", "tags and commands must be lists of short texts")
        if not isinstance(attributes, dict):
            raise Rejected("wrong_type", "attributes must be an object")
        _check_tree("attributes", attributes)
        self._kinds[device_id] = kind
        self.bus.publish(
            DEVICE_ANNOUNCED,
            DeviceAnnounced(
                device_id=device_id,
                kind=kind,
                adapter=ADAPTER_NAME,
                name=_text(data, "name"),
                site=_text(data, "site"),
                lat=_coordinate(data, "lat", 90.0),
                lon=_coordinate(data, "lon", 180.0),
                tags=tuple(tags),
                attributes=attributes,
                commands=tuple(commands),
            ),
            source=ADAPTER_NAME,
            key=device_id,
        )

    def _reply(self, device_id: str, payload: bytes, retain: bool) -> None:
        if retain:
            raise Rejected("retained_reply", "a command reply must not be retained")
        data = _json_object(payload)
        request_id = data.get("id")
        if not isinstance(request_id, str):
            raise Rejected("wrong_type", "id must be the command's id (a text)")
        pending = self._pending.get(request_id)
        if pending is None or pending[0] != device_id:
            raise Rejected("unknown_request", f"no command {request_id!r} is waiting for it")
        ok = data.get("ok")
        result = data.get("result", {})
        error = data.get("error")
        if not isinstance(ok, bool) or not isinstance(result, dict):
            raise Rejected("wrong_type", "ok must be true or false and result an object")
        if error is not None and not isinstance(error, str):
            raise Rejected("wrong_type", "error must be a text")
        _check_tree("result", result)
        if error is not None:
            _check_tree("error", error)
        del self._pending[request_id]
        self.bus.publish(
            DEVICE_COMMAND_REPLIED,
            DeviceCommandReplied(request_id, device_id, ok, result, error),
            source=ADAPTER_NAME,
            key=device_id,
            correlation_id=request_id,
        )

    def _known_figures(self, device_id: str, figures: dict[str, Figure]) -> dict[str, Figure]:
        """The figures without names beyond the device's first ``MAX_FIGURES`` distinct ones.

        A device inventing names would otherwise grow its state, history and metrics without
        bound; the extra names are dropped and counted, the known ones keep updating.
        """
        names = self._figure_names.get(device_id)
        if names is None:
            if len(self._figure_names) >= MAX_SOURCES * 10:
                self._figure_names.clear()  # a flood of made-up ids: start afresh rather than grow
            names = self._figure_names[device_id] = set()
        kept: dict[str, Figure] = {}
        dropped = 0
        for key, value in figures.items():
            if key not in names:
                if len(names) >= MAX_FIGURES:
                    dropped += 1
                    continue
                names.add(key)
            kept[key] = value
        if dropped:
            self._reject(
                device_id,
                Rejected(
                    "too_many_figures",
                    f"{dropped} new figure names beyond {MAX_FIGURES} distinct ones dropped",
                ),
                self.link.topic("devices", device_id, "telemetry"),
            )
        return kept

    def _report(self, device_id: str, figures: dict[str, Figure], online: bool | None) -> None:
        self.bus.publish(
            DEVICE_REPORTED,
            DeviceReported(
                device_id=device_id,
                kind=self._kinds.get(device_id, DEFAULT_KIND),
                figures=figures,
                online=online,
            ),
            source=ADAPTER_NAME,
            key=device_id,
        )

    # -- commands ---------------------------------------------------------------------------------

    async def _send_command(self, request: DeviceCommandRequested) -> None:
        payload = json.dumps(
            {
                "id": request.request_id,
                "command": request.command,
                "args": request.args,
                "ts": time.time(),
            },
            separators=(",", ":"),
        )
        self._pending[request.request_id] = (
            request.device_id,
            self._clock() + self.command_timeout,
        )
        try:
            await self.link.publish(
                self.link.topic("devices", request.device_id, "cmd"), payload, qos=1
            )
        except (AdapterNotReady, TimeoutError) as exc:
            self._pending.pop(request.request_id, None)
            self._answer_failure(request.request_id, request.device_id, f"not sent: {exc}")

    async def _expire_commands(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.command_timeout / 4))
            now = self._clock()
            for request_id, (device_id, deadline) in list(self._pending.items()):
                if now >= deadline:
                    del self._pending[request_id]
                    self._answer_failure(request_id, device_id, "no reply in time")

    def _answer_failure(self, request_id: str, device_id: str, error: str) -> None:
        self.bus.publish(
            DEVICE_COMMAND_REPLIED,
            DeviceCommandReplied(request_id, device_id, ok=False, error=error),
            source=ADAPTER_NAME,
            key=device_id,
            correlation_id=request_id,
        )

    # -- checks -----------------------------------------------------------------------------------

    def _device_id(self, topic: str, suffix: str) -> str:
        rest = topic.removeprefix(self._base)
        device_id = rest.removesuffix("/" + suffix)
        if rest in (topic, device_id) or not DEVICE_ID.fullmatch(device_id):
            raise Rejected("bad_device_id", f"topic {topic[:200]!r} carries no valid device id")
        return device_id

    def _take(self, source: str) -> bool:
        return self._limiter.attempt(source).allowed

    def _reject(self, source: str, exc: Rejected, topic: str) -> None:
        if (source, exc.reason) not in self.rejected and len(self.rejected) >= MAX_SOURCES:
            source = OTHER_SOURCE
        key = (source, exc.reason)
        self.rejected[key] += 1
        self._warn(
            key,
            "dropped %s from device %s on %s: %s (further ones are only counted)",
            exc.reason,
            source,
            topic[:200],
            exc,
        )

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejections summed over sources, for metrics."""
        totals: collections.Counter[str] = collections.Counter()
        for (_, reason), count in self.rejected.items():
            totals[reason] += count
        return dict(totals)

    def rejected_from(self, source: str) -> dict[str, int]:
        """Rejections of one source by reason."""
        return {reason: n for (who, reason), n in self.rejected.items() if who == source}


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("not_json", "the payload is not JSON") from None
    except RecursionError:
        raise Rejected("not_json", "the payload nests too deeply") from None
    if not isinstance(data, dict):
        raise Rejected("not_object", "the payload must be a JSON object")
    return data


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def _check_ts(ts: object) -> None:
    """Accept a missing ``ts``, epoch seconds, or an ISO 8601 text with its zone."""
    if ts is None:
        return
    seconds: object = ts
    if isinstance(ts, str) and len(ts) <= MAX_TEXT:
        with contextlib.suppress(ValueError, OverflowError):
            moment = dt.datetime.fromisoformat(ts)
            seconds = None if moment.tzinfo is None else moment.timestamp()
    if (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and 0 <= seconds <= MAX_TS
    ):
        return
    raise Rejected(
        "wrong_type",
        "ts must be epoch seconds or an ISO 8601 text with its zone, in years 1970-9999",
    )


def _figure(key: str, value: object) -> Figure:
    if not key or len(key) > MAX_TEXT or BAD_IN_NAME.search(key):
        raise Rejected(
            "wrong_type", "figure names must be 1-200 characters without control characters"
        )
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not _finite(value):
            raise Rejected("wrong_type", f"figure {key} is not a finite number")
        return value
    if isinstance(value, str) and len(value) <= MAX_TEXT and not BAD_IN_TEXT.search(value):
        return value
    raise Rejected(
        "wrong_type",
        f"figure {key} must be a number, a short text without control characters, "
        "true/false or null",
    )


def _texts(value: object, limit: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= limit
        and all(
            isinstance(item, str) and 0 < len(item) <= MAX_TEXT and not BAD_IN_NAME.search(item)
            for item in value
        )
    )


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or BAD_IN_NAME.search(value):
        raise Rejected(
            "wrong_type",
            f"{key} must be a text of at most {MAX_TEXT} characters without control characters",
        )
    return value


def _check_tree(key: str, value: object, depth: int = 0) -> None:
    """Reject what the database cannot store: bad characters, non-finite numbers, deep nesting."""
    if depth > MAX_DEPTH:
        raise Rejected("wrong_type", f"{key} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if BAD_IN_TEXT.search(value):
            raise Rejected("wrong_type", f"{key} holds a text with control characters")
    elif isinstance(value, dict):
        for name, item in value.items():
            if BAD_IN_NAME.search(name):
                raise Rejected("wrong_type", f"{key} holds a name with control characters")
            _check_tree(key, item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(key, item, depth + 1)
    elif isinstance(value, int | float) and not _finite(value):
        raise Rejected("wrong_type", f"{key} holds a number that is not finite")


def _coordinate(data: dict[str, Any], key: str, limit: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    # Compared before any float(): an integer of hundreds of digits does not fit one.
    if not _is_number(value) or not -limit <= value <= limit:
        raise Rejected("wrong_type", f"{key} must be a number within ±{limit:g}")
    return float(value)
