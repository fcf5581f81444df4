"""Typed keys for what the app carries, apart so that every module can import them."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from ops.app import Hub

HUB_KEY = web.AppKey("hub", Hub)
METRICS_REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
