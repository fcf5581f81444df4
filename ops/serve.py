"""``posko up``: the hub plus its web server, until SIGINT or SIGTERM, then an ordered shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal

from ops.app import Hub
from ops.core.config import Config
from ops.core.errors import ConfigError
from ops.web.app import serve as serve_web

_LOGGER = logging.getLogger(__name__)


async def serve(config: Config, *, stop: asyncio.Event | None = None, demo: bool = False) -> None:
    """Run the hub and serve HTTP until ``stop`` is set or a termination signal arrives.

    ``demo`` adds the demo room: seeded units and wall, a demo account, the simulated field.

    Shutdown order: stop accepting requests and close live sockets, then the hub (adapters,
    broker link, pool, embedded broker, embedded database), each step bounded.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _request_stop, stop, sig)
            installed.append(sig)
    try:
        async with Hub(config, demo=demo) as hub:
            try:
                async with serve_web(hub) as served:
                    _LOGGER.info("console on %s/", served.url)
                    await stop.wait()
                    _LOGGER.info("shutting down")
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"web.port: {config.web.host}:{config.web.port} is already in use; "
                        "choose another port with [web] port or POSKO_WEB__PORT"
                    ) from None
                raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    _LOGGER.info("received %s", sig.name)
    stop.set()
