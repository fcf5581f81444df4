"""What the device and alarm routes answer: one response model per shape."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field

from db.alarms import AlarmRow
from db.devices import DeviceRow
from ops.http.models import AnyJson, Out, Time

DeviceState = Literal["unknown", "online", "degraded", "offline"]


class DeviceOut(Out):
    """A device with its live health."""

    id: str
    kind: str = Field(examples=["camera", "radio_gateway", "wall_screen"])
    name: str | None
    site: str | None
    lat: float | None
    lon: float | None
    tags: list[str]
    adapter: str | None
    attributes: dict[str, AnyJson]
    configured: bool = Field(description="Registered by a person.")
    state: DeviceState
    reason: str | None
    pending: DeviceState | None = Field(description="A state change waiting out hysteresis.")
    figures: dict[str, AnyJson] = Field(description="The latest figures.")
    last_seen: Time | None
    commands: list[str]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, row: DeviceRow, live: dict[str, Any]) -> Self:
        """A stored device overlaid with its live view."""
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)},
                **{name: live[name] for name in cls.model_fields if name in live},
                "tags": list(row.tags),
            }
        )


class Devices(Out):
    """Devices with their live health."""

    devices: list[DeviceOut]


class AlarmOut(Out):
    """An alarm and its life so far."""

    id: int
    device_id: str
    code: str = Field(examples=["offline", "threshold:signal_bars"])
    severity: Literal["info", "warning", "critical"]
    message: str
    status: Literal["open", "acknowledged", "cleared"]
    raised_at: Time
    last_raised_at: Time
    times: int = Field(ge=1)
    acknowledged_at: Time | None
    acknowledged_by: str | None
    escalated_at: Time | None = Field(description="When it was escalated to supervisors.")
    cleared_at: Time | None
    cleared_by: str | None

    @classmethod
    def of(cls, row: AlarmRow) -> Self:
        """The alarm of a row."""
        return cls.model_validate(row)


class AlarmPage(Out):
    """Alarms newest first."""

    alarms: list[AlarmOut]
    next_before_id: int | None


class FigureSpec(Out):
    """A figure a device kind reports, with its unit."""

    name: str
    unit: str


class Threshold(Out):
    """A bound on a figure that raises an alarm."""

    figure: str
    above: float | None
    below: float | None
    severity: str


class DeviceEvent(Out):
    """One thing that happened to a device."""

    id: int
    at: Time
    kind: str = Field(examples=["state", "alarm.raised", "command", "command.reply"])
    detail: AnyJson


class DeviceDetail(DeviceOut):
    """A device with its kind's rules, active alarms, recent events and rejected input."""

    figure_specs: list[FigureSpec]
    thresholds: list[Threshold]
    alarms: list[AlarmOut]
    events: list[DeviceEvent]
    rejected_input: dict[str, int] = Field(description="Messages dropped, by reason.")


class HealthSample(Out):
    """The device's state and figures at one moment."""

    at: Time
    state: str
    figures: dict[str, AnyJson]


class FigureSummary(Out):
    """A numeric figure over a bucket's samples."""

    avg: float
    min: float
    max: float


class HealthBucket(Out):
    """The samples of a time bucket summed up."""

    start: Time = Field(serialization_alias="from")
    to: Time = Field(description="Exclusive; never past the range's end.")
    samples: int = Field(ge=1)
    state: str = Field(description="The worst state in the bucket.")
    figures: dict[str, FigureSummary]


class HealthHistory(Out):
    """Raw samples when the range holds at most ``buckets`` of them, else time buckets."""

    device_id: str
    since: Time = Field(serialization_alias="from")
    until: Time = Field(serialization_alias="to")
    resolution: str = Field(pattern="^(raw|[1-9][0-9]*s)$", examples=["raw", "1210s"])
    samples: list[HealthSample]
    buckets: list[HealthBucket]


class CommandReply(Out):
    """A device's answer to a command."""

    request_id: str
    device_id: str
    ok: bool
    result: AnyJson
    error: str | None
