"""One set of health rules for every kind of device: states with hysteresis and figure thresholds.

Pure: no I/O and no clock of its own; every call takes ``now`` (monotonic seconds), so the rules
are tested with an injected clock.

A device's *raw* state at a moment is:

- ``offline`` when its last explicit status said so (an MQTT last will, a socket that closed), or
  when it has no explicit status and was silent longer than its silence window;
- ``degraded`` when it is alive but a figure breaches a threshold of its kind;
- ``online`` otherwise.

The *committed* state (what people see) follows the raw state only once the raw state — and for
``degraded`` the set of breached figures — has held for the hysteresis time, so a blip shorter
than that never flaps. A device's first state is committed at once: there is nothing to flap from.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

Figure = float | int | str | bool | None

DEFAULT_SILENCE = 60.0
DEFAULT_HYSTERESIS = 10.0
#: Distinct figures one device's state keeps; names beyond them are ignored, known ones update.
MAX_FIGURES = 64


class HealthState(enum.StrEnum):
    """What a technician needs to know first about a device."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A figure's acceptable range; outside it the device is degraded and an alarm is raised."""

    figure: str
    above: float | None = None
    below: float | None = None
    severity: str = "warning"

    def breached(self, value: Figure) -> bool:
        """Whether ``value`` lies outside the range (non-numbers never breach)."""
        number = as_number(value)
        if number is None:
            return False
        return (self.above is not None and number > self.above) or (
            self.below is not None and number < self.below
        )

    def describe(self, value: Figure) -> str:
        """A short reason for people: ``frame_age_s 12 > 5``."""
        if self.above is not None and (as_number(value) or 0.0) > self.above:
            return f"{self.figure} {value} > {self.above:g}"
        return f"{self.figure} {value} < {self.below:g}"


@dataclass(frozen=True, slots=True)
class FigureSpec:
    """A figure a kind reports: its name and unit, for the device page and its charts."""

    name: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class KindRules:
    """What matters for one kind of device."""

    kind: str
    figures: tuple[FigureSpec, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    commands: tuple[str, ...] = ()
    silence: float | None = None
    """Overrides the policy's silence window for this kind (None: the policy's)."""


#: The kinds the room knows; any other kind gets the generic rules (no thresholds).
DEFAULT_KINDS: dict[str, KindRules] = {
    rules.kind: rules
    for rules in (
        KindRules(
            "camera",
            (FigureSpec("frame_age_s", "s"), FigureSpec("fps", "fps"), FigureSpec("errors")),
            (Threshold("frame_age_s", above=5.0), Threshold("fps", below=5.0)),
            ("snapshot", "reconnect"),
        ),
        KindRules(
            "radio_gateway",
            (
                FigureSpec("last_frame_age_s", "s"),
                FigureSpec("queue_depth"),
                FigureSpec("errors"),
            ),
            (Threshold("last_frame_age_s", above=600.0), Threshold("queue_depth", above=20)),
            ("ping", "reconnect"),
        ),
        KindRules(
            "satellite_terminal",
            (FigureSpec("signal_bars", "bars"), FigureSpec("queue_depth"), FigureSpec("errors")),
            (Threshold("signal_bars", below=2), Threshold("queue_depth", above=10)),
            ("ping", "session"),
        ),
        KindRules(
            "wall_screen",
            (FigureSpec("clients"), FigureSpec("frame_age_s", "s")),
            (Threshold("frame_age_s", above=10.0),),
        ),
        KindRules(
            "mqtt_sensor",
            (FigureSpec("battery_pct", "%"), FigureSpec("rssi_dbm", "dBm")),
            (Threshold("battery_pct", below=20), Threshold("rssi_dbm", below=-100)),
            ("ping", "reboot"),
        ),
        KindRules(
            "tracker",
            (FigureSpec("battery_pct", "%"), FigureSpec("rssi_dbm", "dBm")),
            (Threshold("battery_pct", below=20),),
            ("ping",),
        ),
        KindRules(
            "panic_button",
            (FigureSpec("battery_pct", "%"),),
            (Threshold("battery_pct", below=20, severity="critical"),),
            ("ping",),
        ),
        KindRules("hub", (FigureSpec("restarts"),)),
        KindRules("adapter", (FigureSpec("restarts"),), (Threshold("restarts", above=5),)),
    )
}


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The room's health settings: silence window, hysteresis and the rules of each kind."""

    silence: float = DEFAULT_SILENCE
    hysteresis: float = DEFAULT_HYSTERESIS
    kinds: Mapping[str, KindRules] = field(default_factory=lambda: dict(DEFAULT_KINDS))

    def rules(self, kind: str) -> KindRules:
        """The rules of ``kind`` (generic ones for a kind nobody described)."""
        return self.kinds.get(kind) or KindRules(kind)

    def silence_of(self, kind: str) -> float:
        """How long a device of ``kind`` without explicit status may stay silent."""
        own = self.rules(kind).silence
        return self.silence if own is None else own


@dataclass(frozen=True, slots=True)
class Breach:
    """A figure outside its threshold."""

    figure: str
    severity: str
    reason: str


@dataclass(frozen=True, slots=True)
class Transition:
    """What a committed change means: the new state, why, and the alarms to raise and clear."""

    old: HealthState
    new: HealthState
    reason: str
    raised: tuple[Breach, ...] = ()
    cleared: tuple[str, ...] = ()


class DeviceHealth:
    """The health of one device over time; feed it reports and ticks, act on its transitions."""

    def __init__(self, kind: str, policy: HealthPolicy) -> None:
        self.kind = kind
        self.policy = policy
        self.state = HealthState.UNKNOWN
        self.reason = "never heard from"
        self.figures: dict[str, Figure] = {}
        self.last_seen: float | None = None
        self.explicit: bool | None = None
        self.breaches: dict[str, Breach] = {}
        self._candidate: tuple[HealthState, frozenset[str]] | None = None
        self._candidate_since = 0.0

    def observe(
        self, now: float, figures: Mapping[str, Figure] | None = None, online: bool | None = None
    ) -> Transition | None:
        """Record a report (figures, explicit status or both) and evaluate.

        An explicit ``online=False`` (a last will) is not proof of life; anything else is. At most
        ``MAX_FIGURES`` distinct figure names are kept, so a device inventing names cannot grow
        its state (and its history and metrics) without bound.
        """
        if online is not False:
            self.last_seen = now
        if online is not None:
            self.explicit = online
        if figures:
            known = self.figures
            for name, value in figures.items():
                if name in known or len(known) < MAX_FIGURES:
                    known[name] = value
        return self.evaluate(now)

    def evaluate(self, now: float) -> Transition | None:
        """Re-check the state now (silence, hysteresis); return the transition if one committed."""
        raw, reason, breaches = self._raw(now)
        breached = frozenset(breaches) if raw is HealthState.DEGRADED else frozenset(self.breaches)
        if raw is HealthState.ONLINE:
            breached = frozenset()
        candidate = (raw, breached)
        if candidate == (self.state, frozenset(self.breaches)):
            self._candidate = None
            return None
        if self.state is HealthState.UNKNOWN:
            return self._commit(raw, reason, breaches, breached)
        if candidate != self._candidate:
            self._candidate = candidate
            self._candidate_since = self._began(raw, now)
        if now - self._candidate_since >= self.policy.hysteresis:
            return self._commit(raw, reason, breaches, breached)
        return None

    def tick(self, now: float) -> Transition | None:
        """Re-check only what time alone can change: a pending state or an expired silence.

        Cheap for the usual device (nothing pending, heard from recently), so a hub can tick
        ten thousand devices every second.
        """
        if self._candidate is None:
            if self.explicit is not None or self.last_seen is None:
                return None
            if self.state is HealthState.OFFLINE:
                return None
            if now - self.last_seen <= self.policy.silence_of(self.kind):
                return None
        return self.evaluate(now)

    @property
    def pending(self) -> HealthState | None:
        """The state waiting out the hysteresis, if any."""
        return None if self._candidate is None else self._candidate[0]

    # -- helpers --------------------------------------------------------------------------------

    def _raw(self, now: float) -> tuple[HealthState, str, dict[str, Breach]]:
        if self.explicit is False:
            return HealthState.OFFLINE, "reported offline", {}
        if self.last_seen is None:
            return HealthState.UNKNOWN, "never heard from", {}
        silence = self.policy.silence_of(self.kind)
        quiet = now - self.last_seen
        if self.explicit is None and quiet > silence:
            return HealthState.OFFLINE, f"silent for {quiet:.0f} s (limit {silence:g} s)", {}
        breaches = {
            threshold.figure: Breach(
                threshold.figure,
                threshold.severity,
                threshold.describe(self.figures.get(threshold.figure)),
            )
            for threshold in self.policy.rules(self.kind).thresholds
            if threshold.breached(self.figures.get(threshold.figure))
        }
        if breaches:
            reasons = "; ".join(breach.reason for breach in breaches.values())
            return HealthState.DEGRADED, reasons, breaches
        return HealthState.ONLINE, "reporting", {}

    def _began(self, raw: HealthState, now: float) -> float:
        """When the raw state really began: silence counts from the end of the window."""
        if raw is HealthState.OFFLINE and self.explicit is None and self.last_seen is not None:
            return min(now, self.last_seen + self.policy.silence_of(self.kind))
        return now

    def _commit(
        self,
        raw: HealthState,
        reason: str,
        breaches: dict[str, Breach],
        breached: frozenset[str],
    ) -> Transition | None:
        old = self.state
        raised = tuple(breaches[name] for name in sorted(breached - self.breaches.keys()))
        cleared = tuple(sorted(self.breaches.keys() - breached))
        kept = {name: self.breaches[name] for name in breached if name in self.breaches}
        self.breaches = {**kept, **{breach.figure: breach for breach in raised}}
        self.state = raw
        self.reason = reason
        self._candidate = None
        if old is raw and not raised and not cleared:
            return None
        return Transition(old, raw, reason, raised, cleared)


def as_number(value: Figure) -> float | None:
    """A figure as a finite float (bools as 0/1), or None for text, null, NaN and infinities."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None
