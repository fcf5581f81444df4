"""The embedded MQTT broker: amqtt in-process, used when ``[mqtt] url`` is unset.

Fine for a demo room or a laptop; a real room runs Mosquitto or a broker cluster. amqtt's
defaults bind 0.0.0.0 and load logging and ``$SYS`` plugins, so the listener (loopback only)
and the plugin set (anonymous auth, nothing else) are always given explicitly.

Run standalone with ``python -m devices.mqtt.broker --host 127.0.0.1 --port N``; it prints
``listening on HOST:PORT`` once it accepts connections and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from ops.core.errors import ConfigError

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883
#: amqtt plugins we load: anonymous auth only. No packet or event logging, no ``$SYS``
#: broadcasting (it needs psutil and wakes up on a timer), no topic ACL.
PLUGINS: dict[str, dict[str, Any]] = {
    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
}


class _SnapshotTable(dict[str, Any]):
    """A dict whose iteration walks a copy.

    amqtt iterates its subscription table across awaits (when a client connects, when it
    broadcasts); a subscription added meanwhile raised "dictionary changed size during
    iteration" and dropped that client's connection.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())


class _Broker(Broker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt's broker with two faults of its session start worked around.

    When a client connects, amqtt replays the retained messages of *every* client's
    subscriptions to it; here a replay only reaches a session that holds the subscription
    (a persistent session coming back still gets its own). The subscription table is
    iterated over a snapshot (:class:`_SnapshotTable`).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._subscriptions = _SnapshotTable()

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(held.client_id == session.client_id for held, _ in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class BrokerPortInUse(ConfigError):  # noqa: N818 - reads as a state, like AdapterNotReady
    """The embedded broker's port is taken; the message says which setting to change."""


class EmbeddedBroker:
    """amqtt running on the current event loop, listening on one loopback address."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    @property
    def running(self) -> bool:
        """True between a successful ``start`` and ``stop``."""
        return self._broker is not None

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            BrokerPortInUse: something already listens on the port.
            ConfigError: the address cannot be bound for another reason.
        """
        if self._broker is not None:
            return
        # Probe first: amqtt reports a taken port as a BrokerError, after logging a traceback
        # at ERROR, which reads like a crash rather than a setting to change.
        self._check_bindable()
        broker = _Broker(self._config())
        try:
            await broker.start()
        except BrokerError as exc:
            raise self._bind_error(exc.__cause__ or exc) from exc
        self._broker = broker
        _LOGGER.info("embedded MQTT broker listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Disconnect every client, close the listener and end amqtt's tasks."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        await broker.shutdown()
        _LOGGER.info("embedded MQTT broker on %s:%d stopped", self.host, self.port)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": PLUGINS,
        }

    def _check_bindable(self) -> None:
        # SO_REUSEADDR as amqtt uses it, so TIME_WAIT leftovers of a previous run do not count.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise self._bind_error(exc) from exc

    def _bind_error(self, exc: BaseException) -> ConfigError:
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            return BrokerPortInUse(
                f"MQTT port {self.host}:{self.port} is already in use: set [mqtt] embedded_port "
                "(env POSKO_MQTT__EMBEDDED_PORT) to a free port, or point [mqtt] url at the "
                "broker that is already running"
            )
        return ConfigError(
            f"cannot start the embedded MQTT broker on {self.host}:{self.port}: {exc}; "
            "check [mqtt] embedded_port (env POSKO_MQTT__EMBEDDED_PORT) or set [mqtt] url"
        )


async def serve(host: str, port: int) -> None:
    """Run a broker until SIGTERM or SIGINT, announcing on stdout when it listens."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    broker = EmbeddedBroker(host, port)
    await broker.start()
    try:
        sys.stdout.write(f"listening on {host}:{port}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await broker.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m devices.mqtt.broker", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.host, args.port))
    except ConfigError as exc:
        _LOGGER.error("%s", exc)  # noqa: TRY400 - the message is the whole story
        return 2
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
