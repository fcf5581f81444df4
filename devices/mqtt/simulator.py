"""Simulated MQTT devices that speak the device topics byte for byte, for tests and training.

Each device is its own MQTT client: it connects with the retained ``offline`` last will on
``{prefix}/devices/{id}/status``, announces itself with a retained ``config`` and a retained
``online``, sends telemetry every interval and answers commands on ``cmd`` with a ``cmd/reply``.
``crash()`` drops the socket without a goodbye, so the broker publishes the last will.

Run a small field from the shell::

    python -m devices.mqtt.simulator --port 1883 --prefix posko --count 5 --interval 1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0


def default_figures() -> dict[str, Any]:
    """A sensor's figures with a little noise."""
    return {"battery_pct": round(random.uniform(60, 100), 1), "rssi_dbm": random.randint(-80, -50)}  # noqa: S311


@dataclass
class SimulatedDevice:
    """One device on the broker; ``figures`` may be changed while it runs."""

    host: str
    port: int
    prefix: str
    device_id: str
    kind: str = "mqtt_sensor"
    interval: float | None = 1.0
    config: dict[str, Any] | None = None
    figures: dict[str, Any] = field(default_factory=default_figures)
    commands: tuple[str, ...] = ("ping", "reboot")
    reply: bool = True
    received: list[dict[str, Any]] = field(default_factory=list)
    _client: aiomqtt.Client | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def topic(self, *parts: str) -> str:
        """``{prefix}/devices/{id}/...``."""
        return "/".join((self.prefix, "devices", self.device_id, *parts))

    async def start(self) -> None:
        """Connect (with the last will), announce, and start telemetry and command handling."""
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"sim-{self.prefix.replace('/', '-')}-{self.device_id}"[:120],
            will=aiomqtt.Will(self.topic("status"), b"offline", qos=1, retain=True),
            keepalive=30,
            timeout=CONNECT_TIMEOUT,
        )
        await client.__aenter__()
        self._client = client
        await client.subscribe(self.topic("cmd"), qos=1)
        config = self.config if self.config is not None else {"kind": self.kind}
        config = {"commands": list(self.commands), **config}
        await client.publish(self.topic("config"), json.dumps(config), qos=1, retain=True)
        await client.publish(self.topic("status"), b"online", qos=1, retain=True)
        self._tasks.append(asyncio.create_task(self._commands(client)))
        if self.interval is not None:
            self._tasks.append(asyncio.create_task(self._telemetry(client, self.interval)))

    async def send_telemetry(self, figures: dict[str, Any] | None = None) -> None:
        """Publish one telemetry message now."""
        client = self._require()
        body = {"ts": time.time(), **(self.figures if figures is None else figures)}
        await client.publish(self.topic("telemetry"), json.dumps(body), qos=0)

    async def publish_raw(self, suffix: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish anything on one of this device's topics (for bad-input tests)."""
        await self._require().publish(self.topic(*suffix.split("/")), payload, retain=retain)

    async def stop(self) -> None:
        """A clean goodbye: retained ``offline``, then disconnect."""
        client = self._require()
        tasks = self._cancel_tasks()
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(self.topic("status"), b"offline", qos=1, retain=True)
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)
        self._client = None
        await _ended(tasks)

    async def crash(self) -> None:
        """Drop the connection without a goodbye: the broker publishes the last will."""
        client = self._require()
        tasks = self._cancel_tasks()
        client._client._sock_close()  # noqa: SLF001 - an abrupt socket loss is the point
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await client.__aexit__(None, None, None)
        self._client = None
        await _ended(tasks)

    def _require(self) -> aiomqtt.Client:
        if self._client is None:
            raise RuntimeError(f"simulated device {self.device_id} is not started")
        return self._client

    def _cancel_tasks(self) -> list[asyncio.Task[None]]:
        """Cancel telemetry and command handling; the caller disconnects, then awaits them.

        A cancel alone may be lost: on Python 3.11 ``asyncio.wait_for`` (which aiomqtt's
        ``publish`` awaits the broker's PUBACK with) returns the result instead of raising when
        the PUBACK lands in the same loop step as the cancel, and the command loop then waits
        for its next message for ever. The disconnect ends that wait too.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        return tasks

    async def _telemetry(self, client: aiomqtt.Client, interval: float) -> None:
        try:
            while True:
                body = {"ts": time.time(), **self.figures}
                await client.publish(self.topic("telemetry"), json.dumps(body), qos=0)
                await asyncio.sleep(interval)
        except aiomqtt.MqttError as exc:
            _LOGGER.info("simulated device %s lost its broker: %s", self.device_id, exc)

    async def _commands(self, client: aiomqtt.Client) -> None:
        try:
            await self._answer(client)
        except aiomqtt.MqttError as exc:
            _LOGGER.info("simulated device %s lost its broker: %s", self.device_id, exc)

    async def _answer(self, client: aiomqtt.Client) -> None:
        wanted = self.topic("cmd")
        async for message in client.messages:
            if message.topic.value != wanted:
                continue  # some brokers also hand back other traffic of this client
            try:
                command = json.loads(bytes(message.payload))  # type: ignore[arg-type,unused-ignore]
            except ValueError:
                continue
            if not isinstance(command, dict) or not isinstance(command.get("id"), str):
                continue  # not a command: nothing to answer
            self.received.append(command)
            if not self.reply:
                continue
            name = command.get("command")
            if name in self.commands:
                answer = {"id": command.get("id"), "ok": True, "result": {"command": name}}
            else:
                answer = {"id": command.get("id"), "ok": False, "error": f"unknown {name!r}"}
            await client.publish(self.topic("cmd", "reply"), json.dumps(answer), qos=1)


async def _ended(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for a stopped device's tasks; they end on the cancel or on the disconnect."""
    await asyncio.gather(*tasks, return_exceptions=True)


async def _main(args: argparse.Namespace) -> None:
    devices = [
        SimulatedDevice(
            args.host, args.port, args.prefix, f"{args.id_prefix}{n}", interval=args.interval
        )
        for n in range(args.count)
    ]
    for device in devices:
        await device.start()
    _LOGGER.info(
        "%d simulated devices on %s:%d under %s", len(devices), args.host, args.port, args.prefix
    )
    try:
        await asyncio.Event().wait()
    finally:
        for device in devices:
            await device.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m devices.mqtt.simulator``: run a few devices until Ctrl-C."""
    parser = argparse.ArgumentParser(description="simulated MQTT devices")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="posko")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--id-prefix", default="sim-sensor-")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
