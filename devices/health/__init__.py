"""Device health: one set of pure rules (states, hysteresis, figures, thresholds) for all kinds."""

from devices.health.rules import (
    DEFAULT_KINDS,
    Breach,
    DeviceHealth,
    FigureSpec,
    HealthPolicy,
    HealthState,
    KindRules,
    Threshold,
    Transition,
    as_number,
)

__all__ = [
    "DEFAULT_KINDS",
    "Breach",
    "DeviceHealth",
    "FigureSpec",
    "HealthPolicy",
    "HealthState",
    "KindRules",
    "Threshold",
    "Transition",
    "as_number",
]
