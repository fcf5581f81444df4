"""Typed keys for what the app carries, apart so that every module can import them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from ops.app import Hub

#: The running hub; typed only for checkers, so no web module needs ``ops.app`` to import.
HUB_KEY: web.AppKey[Hub] = web.AppKey("hub")
METRICS_REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
