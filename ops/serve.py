"""``posko up``: the hub plus its web server, until SIGINT or SIGTERM, then an ordered shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ops.app import Hub
from ops.core.config import Config, WebConfig
from ops.core.errors import ConfigError
from ops.demo import DemoRoom, room_config
from ops.http.errors import error_body
from ops.web.app import SHUTDOWN_TIMEOUT, Served, create_app

_LOGGER = logging.getLogger(__name__)


#: What a client is told to wait before asking again while the hub starts.
STARTING_RETRY_AFTER = "5"


async def serve(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    demo: bool = False,
    on_listening: Callable[[Served], object] | None = None,
) -> None:
    """Run the hub and serve HTTP until ``stop`` is set or a termination signal arrives.

    ``demo`` adds the demo room: seeded units and wall, a demo account, the simulated field.
    ``on_listening`` is called with the bound address (``[web] port`` 0 picks a free one).

    The web port is bound first, so a taken port is reported before anything else starts, and
    ``/healthz`` answers while the hub starts (``/readyz`` says 503 until it is ready; other
    paths answer 503 ``starting``). A stop during start-up stops what was started.

    Shutdown order: stop accepting requests and close live sockets, then the demo room, then the
    hub (adapters, broker link, pool, embedded broker, embedded database), each step bounded.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _request_stop, stop, sig)
            installed.append(sig)
    try:
        hub = Hub(room_config(config) if demo else config)  # starts nothing yet
        started = asyncio.Event()
        app = create_app(hub)
        app.middlewares.insert(0, _while_starting(hub, started))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        sock = _bind(config.web)
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        try:
            served = Served(config.web.host, int(sock.getsockname()[1]))
            _LOGGER.info("listening on %s; starting the hub", served.url)
            if on_listening is not None:
                on_listening(served)
            if not await _start_unless_stopped(hub, stop):
                return
            try:
                async with contextlib.AsyncExitStack() as room:
                    try:
                        if demo:
                            await room.enter_async_context(DemoRoom(hub))
                        started.set()
                        _LOGGER.info("console on %s/", served.url)
                        await stop.wait()
                        _LOGGER.info("shutting down")
                    finally:
                        await _stop_web(runner)
            finally:
                await hub.__aexit__(None, None, None)
        finally:
            await _stop_web(runner)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _bind(cfg: WebConfig) -> socket.socket:
    """Bind and listen on ``[web] host:port`` now, so a taken port is the first thing reported."""
    try:
        infos = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"web.host: cannot resolve {cfg.host!r} ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own flag
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"web.port: {cfg.host}:{cfg.port} is already in use; "
                "choose another port with [web] port or POSKO_WEB__PORT"
            ) from None
        raise ConfigError(f"web.host: cannot listen on {cfg.host}:{cfg.port} ({exc})") from None
    return sock


async def _start_unless_stopped(hub: Hub, stop: asyncio.Event) -> bool:
    """Start ``hub`` unless ``stop`` comes first; then stop what was started and return False."""
    starting = asyncio.create_task(hub.__aenter__(), name="hub-start")
    stopping = asyncio.create_task(stop.wait(), name="hub-stop-requested")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _cancel(starting)
        if starting.done() and not starting.cancelled() and starting.exception() is None:
            await hub.__aexit__(None, None, None)  # it came up just as we were cancelled
        raise
    finally:
        await _cancel(stopping)
    if starting.done():
        starting.result()  # a failed start has already closed what it opened; re-raise
        return True
    _LOGGER.info("stop requested while starting; stopping what was started")
    await _cancel(starting)  # Hub.__aenter__ unwinds its own partial start when cancelled
    return False


async def _cancel(task: asyncio.Task[object]) -> None:
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_web(runner: web.AppRunner) -> None:
    """Stop accepting requests and close live sockets (idempotent)."""
    if runner.server is not None:
        await runner.cleanup()
        _LOGGER.info("web server stopped")


def _while_starting(hub: Hub, started: asyncio.Event) -> Middleware:
    """Answer for a hub that is still starting: only ``/healthz`` goes through.

    ``/readyz`` says 503 with a false ``started`` check (its probes may pass before the hub is
    whole); everything else is 503 ``starting``.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if started.is_set() or request.path == "/healthz":
            return await handler(request)
        if request.path == "/readyz":
            checks = {**await hub.check_readiness(), "started": False}
            return web.json_response({"ready": False, "checks": checks}, status=503)
        return web.json_response(
            error_body("starting", "the hub is starting; try again shortly"),
            status=503,
            headers={"Retry-After": STARTING_RETRY_AFTER},
        )

    return middleware


def _request_stop(stop: asyncio.Event, sig: signal.Signals) -> None:
    _LOGGER.info("received %s", sig.name)
    stop.set()
