"""Exceptions that tell the supervisor how to treat an adapter's failure."""

from __future__ import annotations


class PoskoError(Exception):
    """Base of every error Posko raises on purpose."""


class ConfigError(PoskoError):
    """The configuration is invalid; the message names the key and what was wrong."""


class AdapterNotReady(PoskoError):  # noqa: N818 - reads as a state, like HA's ConfigEntryNotReady
    """A transient failure: the supervisor retries with backoff."""


class AdapterConfigError(PoskoError):
    """The adapter cannot work with its configuration: stop it and raise an alarm."""


class AdapterAuthError(PoskoError):
    """The peer refused our credentials: stop the adapter and raise an alarm, never hammer it."""


class AdapterStale(PoskoError):  # noqa: N818 - a state, not an action
    """No proof of life within the adapter's staleness window."""


class SubscriptionOverflow(PoskoError):  # noqa: N818 - a state, not an action
    """A subscriber with the DISCONNECT policy fell behind and was cut off."""


class SubscriptionClosed(PoskoError):  # noqa: N818 - a state, not an action
    """The subscription was closed and everything queued before has been read."""
