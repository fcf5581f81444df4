"""Signs of life the MQTT device bus does not own: peer hubs' status and panic presses.

Two read-only subscriptions on the hub's MQTT link, both turned into ``device.reported`` events
that the health service already evaluates:

- ``{prefix}/hub/+/status``: every hub on the same broker and prefix keeps a retained
  ``online``/``offline`` status with ``offline`` as its last will (see ``devices.mqtt.link``).
  Each *peer* hub (not this one, which reports itself) becomes the device ``hub:{id}`` of kind
  ``hub``, whose explicit status follows that message, so a peer that dies shows offline and
  raises the usual (critical) ``offline`` alarm. A peer is taken on when it is heard
  ``online`` (or is in the registry already): the retained ``offline`` of a hub retired before
  this room ever saw it run does not make a device, nor an alarm that nobody could clear.
- ``{prefix}/panic/+``: a press is proof of life for the button that sent it. Only the topic's
  device id is read; the press itself (its payload, the case it opens) is the panic intake's
  business, on its own subscription to the same filter. The link hands each message to every
  handler whose filter matches, so neither subscription takes messages from the other. A press
  marks a device heard only if the registry knows it (or ``devices.register_unknown`` is set),
  at most once per ``HEARD_EVERY`` seconds per device.

Bad input never raises: an id that is not a hub id or device id, or a status other than
``online``/``offline``, is dropped and logged once per reason; an empty retained status (a
status deleted from the broker) is ignored.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from ops.core.bus import Bus
from ops.core.events import DEVICE_REPORTED, DeviceReported
from ops.core.warnonce import WarnOnce

if TYPE_CHECKING:
    from ops.core.mqtt import MessageHandler, MqttMessage

_LOGGER = logging.getLogger(__name__)

SOURCE: Final = "devicehealth.watch"
HUB_KIND: Final = "hub"
PANIC_KIND: Final = "panic_button"
#: The hub id rule of ``[hub] id``.
HUB_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The device id rule of the MQTT device bus.
DEVICE_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
#: At most this many peer hubs are followed, and this many panic buttons' last press kept.
MAX_PEERS: Final = 1000
MAX_HEARD: Final = 10_000
#: A button pressed again and again is marked heard at most this often (seconds).
HEARD_EVERY: Final = 1.0
_STATUS: Final = {b"online": True, b"offline": False}


class Link(Protocol):
    """What the watch needs of the hub's MQTT link."""

    hub_id: str

    def topic(self, *parts: str) -> str:
        """A topic under the configured prefix."""
        ...

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Route matching messages to ``handler`` on every connection."""
        ...


def hub_device_id(hub_id: str) -> str:
    """The device id of a hub: ``hub:{id}``."""
    return f"hub:{hub_id}"


class MqttWatch:
    """Peer hubs' status and panic presses as ``device.reported`` events."""

    def __init__(
        self,
        link: Link,
        bus: Bus,
        *,
        known: Callable[[str], bool],
        register_unknown: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.bus = bus
        self.hub_id = link.hub_id
        self.peers: set[str] = set()
        self.dropped = 0
        self._known = known
        self._register_unknown = register_unknown
        self._clock = clock
        self._heard_at: dict[str, float] = {}
        self._warn = WarnOnce(_LOGGER)
        self._hub_prefix = link.topic("hub", "")
        self._panic_prefix = link.topic("panic", "")

    def attach(self) -> None:
        """Subscribe both filters on the link (kept across reconnects by the link)."""
        self.link.subscribe(self.link.topic("hub", "+", "status"), self.on_hub_status, qos=1)
        self.link.subscribe(self.link.topic("panic", "+"), self.on_panic, qos=1)

    def on_hub_status(self, message: MqttMessage) -> None:
        """A hub's retained status (or its last will): follow it for every peer hub."""
        rest = message.topic.removeprefix(self._hub_prefix)
        hub_id = rest.removesuffix("/status")
        if hub_id == self.hub_id:
            return  # this hub reports itself
        if not message.payload:
            return  # a retained status removed from the broker says nothing
        if not HUB_ID.fullmatch(hub_id):
            self._drop("bad_hub_id", message.topic)
            return
        online = _STATUS.get(message.payload)
        if online is None:
            self._drop("bad_status", f"hub {hub_id}")
            return
        if hub_id not in self.peers and not online and not self._known(hub_device_id(hub_id)):
            # A hub this room never saw running (its retained goodbye outlived it): not a peer.
            return
        if hub_id not in self.peers:
            if len(self.peers) >= MAX_PEERS:
                self._drop("too_many_peers", f"hub {hub_id}")
                return
            self.peers.add(hub_id)
        device_id = hub_device_id(hub_id)
        self.bus.publish(
            DEVICE_REPORTED,
            DeviceReported(device_id, HUB_KIND, online=online, name=hub_id),
            source=SOURCE,
            key=device_id,
        )

    def on_panic(self, message: MqttMessage) -> None:
        """A panic press: the button is alive. Its payload is never read here."""
        device_id = message.topic.removeprefix(self._panic_prefix)
        if not DEVICE_ID.fullmatch(device_id):
            return  # the panic intake refuses it and says why
        if not self._register_unknown and not self._known(device_id):
            return  # nobody registered this button; the panic intake still files the press
        now = self._clock()
        last = self._heard_at.get(device_id)
        if last is not None and now - last < HEARD_EVERY:
            return
        if last is None and len(self._heard_at) >= MAX_HEARD:
            self._heard_at.clear()  # only a throttle: forgetting costs one extra report each
        self._heard_at[device_id] = now
        self.bus.publish(
            DEVICE_REPORTED,
            DeviceReported(device_id, PANIC_KIND),
            source=SOURCE,
            key=device_id,
        )

    def _drop(self, reason: str, what: str) -> None:
        self.dropped += 1
        self._warn(
            reason,
            "MQTT message dropped (%s): %s (further ones are not logged)",
            reason,
            what[:200],
        )
