"""Configuration: one TOML file plus ``POSKO_<SECTION>__<KEY>`` environment overrides.

Everything is validated before the hub starts; an error names the key (or variable) and what was
wrong. Unknown keys are errors, so a typo never silently falls back to a default. Secrets come only
from the environment, so a config file can be shared without leaking them.
"""

from __future__ import annotations

import json
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ops.core.errors import ConfigError

ENV_PREFIX = "POSKO_"
ENV_SEPARATOR = "__"
DEFAULT_CONFIG_FILE = Path("posko.toml")

#: Keys that may only come from the environment.
SECRET_KEYS: frozenset[tuple[str, str]] = frozenset(
    {
        ("database", "password"),
        ("mqtt", "password"),
        ("web", "session_secret"),
        ("intake", "connector_token"),
    }
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HubConfig(_Section):
    """The hub process itself."""

    id: str = Field(default="posko", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    data_dir: Path = Path("var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "Asia/Jakarta"
    shutdown_timeout: float = Field(default=10.0, gt=0, le=120)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name like Asia/Jakarta, Asia/Makassar, "
                "Asia/Jayapura)"
            ) from None
        return value


class WebConfig(_Section):
    """The HTTP API, live socket and pages."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    secure_cookies: bool = False
    live_queue: int = Field(default=256, ge=8, le=100_000)
    login_attempts_per_minute: int = Field(default=10, ge=1, le=10_000)
    session_secret: SecretStr | None = None


class DatabaseConfig(_Section):
    """PostgreSQL; no URL means the embedded server under ``hub.data_dir``."""

    url: str | None = None
    password: SecretStr | None = None
    pool_min: int = Field(default=1, ge=0, le=100)
    pool_max: int = Field(default=10, ge=1, le=200)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    command_timeout: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"postgresql", "postgres"}:
            raise ValueError("must start with postgresql://")
        if parts.password:
            raise ValueError(
                "must not contain a password; set POSKO_DATABASE__PASSWORD in the environment"
            )
        return value


class MqttConfig(_Section):
    """The MQTT broker; no URL means the embedded broker on ``embedded_port``."""

    url: str | None = None
    embedded_port: int = Field(default=1883, ge=1, le=65535)
    prefix: str = Field(default="posko", pattern=r"^[A-Za-z0-9_/-]{1,64}$")
    username: str | None = None
    password: SecretStr | None = None
    keepalive: int = Field(default=30, ge=5, le=3600)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError("must look like mqtt://host:port")
        if parts.password:
            raise ValueError("must not contain a password; set POSKO_MQTT__PASSWORD")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"has a bad port: {exc}") from exc
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        """Where the hub connects: the configured broker, or the embedded one on loopback."""
        if self.url is None:
            return "127.0.0.1", self.embedded_port
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 1883


class CasesConfig(_Section):
    """Cases: duplicate detection, the SLA watch and the public endpoints' limits."""

    duplicate_distance_m: float = Field(default=500.0, ge=0, le=100_000)
    duplicate_window_minutes: float = Field(default=120.0, ge=0, le=7 * 24 * 60)
    sla_check_seconds: float = Field(default=15.0, gt=0, le=3600)
    public_reports_per_minute: int = Field(default=10, ge=1, le=10_000)
    public_lookups_per_minute: int = Field(default=30, ge=1, le=10_000)


class IntakeConfig(_Section):
    """Intake channels: the SMTP listener (off without a port) and the external connector."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(default=None, ge=0, le=65535)
    max_mail_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    email_category: str = "other"
    connector_url: str | None = None
    connector_source: str = Field(default="lapor", pattern=r"^[a-z0-9_-]{1,32}$")
    connector_interval: float = Field(default=60.0, gt=0, le=86_400)
    connector_timeout: float = Field(default=10.0, gt=0, le=300)
    connector_token: SecretStr | None = None


class MapConfig(_Section):
    """The console's and wall's map: the offline country and province outlines, online tiles if set.

    ``provinces_file`` replaces the built-in province outlines with the room's own GeoJSON.
    """

    center_lat: float = Field(default=-2.5, ge=-90, le=90)
    center_lon: float = Field(default=118.0, ge=-180, le=180)
    zoom: int = Field(default=5, ge=2, le=18)
    provinces_file: Path | None = None
    tile_url: str | None = None
    tile_attribution: str = Field(default="", max_length=300)

    @field_validator("provinces_file")
    @classmethod
    def _check_provinces_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("tile_url")
    @classmethod
    def _check_tile_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL like https://tiles.example/{z}/{x}/{y}.png")
        if not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError("must contain {z}, {x} and {y}")
        return value


class DevicesConfig(_Section):
    """Device health and the MQTT device bus (see docs/devices.md)."""

    offline_after: float = Field(default=60.0, gt=0, le=86_400)
    hysteresis: float = Field(default=10.0, ge=0, le=3600)
    escalate_after: float = Field(default=300.0, gt=0, le=86_400)
    history_days: float = Field(default=7.0, gt=0, le=3650)
    sample_every: float = Field(default=5.0, ge=0, le=3600)
    share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    max_payload: int = Field(default=16_384, ge=256, le=1_048_576)
    rate_per_device: float = Field(default=10.0, gt=0, le=10_000)
    register_unknown: bool = False


class DispatchConfig(_Section):
    """Units and dispatch: ack timeouts per channel, position freshness (docs/dispatch.md)."""

    mqtt_ack_timeout: float = Field(default=60.0, gt=0, le=86_400)
    radio_ack_timeout: float = Field(default=120.0, gt=0, le=86_400)
    satellite_ack_timeout: float = Field(default=600.0, gt=0, le=86_400)
    auto_escalate: bool = True
    stale_after: float = Field(default=900.0, gt=0, le=7 * 86_400)
    future_tolerance: float = Field(default=60.0, ge=0, le=3600)
    watch_interval: float = Field(default=1.0, gt=0, le=600)
    #: Seconds a copy handed to a channel stays claimed before it is handed out again, unless
    #: the channel reports it taken (then until its deadline) or sent.
    claim_lease: float = Field(default=30.0, gt=0, le=3600)
    position_batch: int = Field(default=2000, ge=1, le=100_000)
    position_flush: float = Field(default=0.2, gt=0, le=60)
    position_buffer: int = Field(default=100_000, ge=100, le=10_000_000)


SHIFT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_SHIFT_NAME = re.compile(SHIFT_NAME_PATTERN)
_SHIFT_START = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
DEFAULT_SHIFTS: Mapping[str, str] = {"pagi": "07:00", "siang": "15:00", "malam": "23:00"}


class ShiftsConfig(_Section):
    """The room's shifts: each name and its start, "HH:MM" in ``hub.timezone`` (docs/dispatch.md).

    A shift lasts until the next one starts; the last of the day runs past midnight into the
    first. In the environment: ``POSKO_SHIFTS__STARTS="pagi=07:00,siang=15:00,malam=23:00"``.
    """

    starts: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SHIFTS))

    @field_validator("starts", mode="before")
    @classmethod
    def _parse_environment(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        starts: dict[str, str] = {}
        for item in value.split(","):
            name, sep, start = item.strip().partition("=")
            if not sep:
                raise ValueError(f"{item.strip()!r} is not NAME=HH:MM")
            starts[name.strip()] = start.strip()
        return starts

    @field_validator("starts")
    @classmethod
    def _check_starts(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one shift is needed")
        seen: dict[str, str] = {}
        for name, start in value.items():
            if not _SHIFT_NAME.fullmatch(name):
                raise ValueError(f"shift name {name!r} must match {SHIFT_NAME_PATTERN}")
            if not _SHIFT_START.fullmatch(start):
                raise ValueError(f"shift {name!r}: start {start!r} must be HH:MM (00:00-23:59)")
            if start in seen:
                raise ValueError(f"shifts {seen[start]!r} and {name!r} both start at {start}")
            seen[start] = name
        return value


MIN_BAUD = 50
MAX_BAUD = 4_000_000
MAX_RETRY_STEP = 86_400
_CALLSIGN = re.compile(r"^[A-Z0-9]{1,6}(-([0-9]|1[0-5]))?$")
_PLAN_NAME = re.compile(r"^[^\x00-\x1f]{1,40}$")


def check_callsign(value: str) -> str:
    """An AX.25 station: 1-6 upper-case letters or digits, optionally ``-SSID`` (0-15)."""
    value = value.strip().upper()
    if not _CALLSIGN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a callsign (1-6 letters or digits, optionally -SSID 0-15)"
        )
    return value


def _parse_json_list(value: object) -> object:
    """A list of tables given in the environment is JSON (``POSKO_RADIO__GATEWAYS='[...]'``)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON list of tables: {exc}") from None
    return value


class RadioChannelPlan(_Section):
    """One named channel of a gateway's transceiver that an operator picks from the console."""

    name: str
    frequency: int = Field(gt=0, le=10_000_000_000)  # Hz
    mode: str = Field(default="FM", pattern=r"^[A-Z0-9]{1,10}$")
    passband: int = Field(default=0, ge=-1, le=1_000_000)  # Hz; 0 rig default, -1 no change

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _PLAN_NAME.fullmatch(value):
            raise ValueError("must be 1-40 printable characters")
        return value


class RadioGatewayConfig(_Section):
    """One KISS TNC (serial or TCP), with its transceiver's PTT and CAT control (docs/radio.md).

    ``url``: ``serial:///dev/ttyUSB0?baud=9600`` or ``tcp://host:8001``. ``ptt``: ``none`` (the
    TNC keys itself), ``rig`` (through ``rig``'s rigctld) or
    ``serial:///dev/ttyUSB1?line=RTS&invert=0`` (RTS or DTR of a serial port). ``rig``:
    ``tcp://host:4532``, a hamlib rigctld. ``quiet_after``: seconds without a frame heard after
    which the link is re-opened (unset: a quiet channel is normal).
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    url: str
    name: str = ""
    kiss_port: int = Field(default=0, ge=0, le=15)
    quiet_after: float | None = Field(default=None, gt=0, le=86_400)
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    ptt: str = "none"
    rig: str | None = None
    tx_timeout: float = Field(default=30.0, gt=0, le=600)
    channels: list[RadioChannelPlan] = Field(default_factory=list, max_length=100)
    default_channel: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "serial":
            if not parts.path or parts.netloc:
                raise ValueError("a serial TNC looks like serial:///dev/ttyUSB0?baud=9600")
            _check_baud(parts.query)
        elif parts.scheme == "tcp":
            _check_host_port(parts, "tcp://host:8001")
        else:
            raise ValueError("must be serial:///dev/… or tcp://host:port")
        return value

    @field_validator("rig")
    @classmethod
    def _check_rig(cls, value: str | None) -> str | None:
        if value is not None:
            _check_host_port(urlsplit(value), "tcp://host:4532", scheme="tcp")
        return value

    @field_validator("ptt")
    @classmethod
    def _check_ptt(cls, value: str) -> str:
        if value in {"none", "rig"}:
            return value
        parts = urlsplit(value)
        if parts.scheme != "serial" or not parts.path or parts.netloc:
            raise ValueError(
                "must be none, rig or serial:///dev/ttyUSB1?line=RTS&invert=0 (line RTS or DTR)"
            )
        query = dict(parse_qsl(parts.query))
        if query.get("line", "RTS") not in {"RTS", "DTR"}:
            raise ValueError("line must be RTS or DTR")
        if query.get("invert", "0") not in {"0", "1"}:
            raise ValueError("invert must be 0 or 1")
        unknown = set(query) - {"line", "invert"}
        if unknown:
            raise ValueError(f"unknown option {min(unknown)!r} (line, invert)")
        return value

    @model_validator(mode="after")
    def _check_plan(self) -> Self:
        names = [plan.name for plan in self.channels]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique per gateway")
        if self.default_channel is not None and self.default_channel not in names:
            raise ValueError(f"default_channel {self.default_channel!r} is not in channels")
        if self.ptt == "rig" and self.rig is None:
            raise ValueError("ptt = rig needs rig = tcp://host:port")
        if self.channels and self.rig is None:
            raise ValueError("a channel plan needs rig = tcp://host:port to tune the radio")
        return self


def _check_baud(query: str) -> None:
    options = dict(parse_qsl(query))
    unknown = set(options) - {"baud"}
    if unknown:
        raise ValueError(f"unknown serial option {min(unknown)!r} (baud)")
    baud = options.get("baud", "9600")
    if not baud.isdigit() or not MIN_BAUD <= int(baud) <= MAX_BAUD:
        raise ValueError(f"baud {baud!r} must be a number from {MIN_BAUD} to {MAX_BAUD}")


def _check_host_port(parts: SplitResult, example: str, scheme: str = "tcp") -> None:
    if parts.scheme != scheme or not parts.hostname:
        raise ValueError(f"must look like {example}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"has a bad port: {exc}") from None
    if port is None:
        raise ValueError(f"needs a port, like {example}")


class RadioConfig(_Section):
    """Radio gateways: APRS over KISS TNCs, their transceivers, the retry schedule (docs/radio.md).

    ``callsign`` is the room's station; ``tocall`` the destination of its frames (the software's
    APRS tocall); ``path`` the digipeater path of what it sends; ``retry`` the seconds between
    re-sends of an unacknowledged message (WB4APR's decaying schedule), after which it stops.
    """

    callsign: str = "POSKO"
    tocall: str = "APZPSK"
    path: list[str] = Field(default_factory=lambda: ["WIDE1-1"], max_length=8)
    retry: list[float] = Field(
        default_factory=lambda: [15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 960.0],
        min_length=1,
        max_length=20,
    )
    gateways: list[RadioGatewayConfig] = Field(default_factory=list, max_length=32)

    _check_station = field_validator("callsign", "tocall")(check_callsign)

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: list[str]) -> list[str]:
        return [check_callsign(hop) for hop in value]

    @field_validator("retry")
    @classmethod
    def _check_retry(cls, value: list[float]) -> list[float]:
        if any(not 0 < step <= MAX_RETRY_STEP for step in value):
            raise ValueError(
                f"each retry step must be more than 0 and at most {MAX_RETRY_STEP} seconds"
            )
        return value

    @field_validator("gateways", mode="before")
    @classmethod
    def _gateways_from_environment(cls, value: object) -> object:
        return _parse_json_list(value)

    @field_validator("gateways")
    @classmethod
    def _check_unique(cls, value: list[RadioGatewayConfig]) -> list[RadioGatewayConfig]:
        ids = [gateway.id for gateway in value]
        if len(set(ids)) != len(ids):
            raise ValueError("gateway ids must be unique")
        return value


class Config(_Section):
    """The whole configuration."""

    hub: HubConfig = HubConfig()
    web: WebConfig = WebConfig()
    database: DatabaseConfig = DatabaseConfig()
    mqtt: MqttConfig = MqttConfig()
    devices: DevicesConfig = DevicesConfig()
    map: MapConfig = MapConfig()
    cases: CasesConfig = CasesConfig()
    intake: IntakeConfig = IntakeConfig()
    dispatch: DispatchConfig = DispatchConfig()
    shifts: ShiftsConfig = ShiftsConfig()
    radio: RadioConfig = RadioConfig()


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the file (if any), apply environment overrides, and validate everything.

    ``path`` None reads ``posko.toml`` when it exists. Raises ConfigError naming the key.
    """
    environ = {} if environ is None else environ
    data: dict[str, Any] = {}
    source = "defaults"
    file = path
    if file is None and DEFAULT_CONFIG_FILE.exists():
        file = DEFAULT_CONFIG_FILE
    if file is not None:
        data = _read_toml(file)
        source = str(file)
        _refuse_secrets_in_file(data, source)
    origins = _apply_environment(data, environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, origins, source)) from None


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None


def _refuse_secrets_in_file(data: Mapping[str, Any], source: str) -> None:
    for section, key in sorted(SECRET_KEYS):
        table = data.get(section)
        if isinstance(table, dict) and key in table:
            variable = f"{ENV_PREFIX}{section.upper()}{ENV_SEPARATOR}{key.upper()}"
            raise ConfigError(
                f"{section}.{key} in {source}: secrets are read only from the environment; "
                f"set {variable} instead"
            )


#: ``POSKO_*`` variables that are not configuration: the CLI's password for scripts, and the
#: test suite's switches. Any other ``POSKO_*`` must be ``POSKO_<SECTION>__<KEY>``.
NON_CONFIG_VARIABLES = frozenset(
    {"POSKO_PASSWORD", "POSKO_UPDATE_SCREENSHOTS", "POSKO_TEST_EMBEDDED", "POSKO_TEST_PG_DIR"}
)


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge ``POSKO_<SECTION>__<KEY>`` variables into ``data``; return key -> variable name.

    A ``POSKO_*`` variable of any other shape is an error (``POSKO_WEB_PORT`` is a typo that
    would otherwise be ignored), except the few in NON_CONFIG_VARIABLES.
    """
    origins: dict[str, str] = {}
    sections = Config.model_fields
    for variable, value in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX) or variable in NON_CONFIG_VARIABLES:
            continue
        if ENV_SEPARATOR not in variable:
            raise ConfigError(
                f"{variable}: not a configuration variable; overrides are named "
                f"{ENV_PREFIX}<SECTION>{ENV_SEPARATOR}<KEY>, e.g. {ENV_PREFIX}WEB"
                f"{ENV_SEPARATOR}PORT"
            )
        section, _, key = variable[len(ENV_PREFIX) :].lower().partition(ENV_SEPARATOR)
        if section not in sections:
            raise ConfigError(
                f"{variable}: unknown section {section!r} (known: {', '.join(sections)})"
            )
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: must be a table")
        table[key] = value
        origins[f"{section}.{key}"] = variable
    return origins


def _explain(exc: ValidationError, origins: Mapping[str, str], source: str) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        where = origins.get(key, source)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        got = error.get("input")
        secretive = key.endswith(("url", "password", "secret"))
        quiet = secretive or error["type"] in {"extra_forbidden", "missing"}
        shown = "" if quiet else f" (got {got!r})"
        lines.append(f"{key}: {message}{shown} [{where}]")
    return "invalid configuration: " + "; ".join(lines)
