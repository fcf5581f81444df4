"""A gateway's transceiver under the room's control: PTT, frequency and mode, the channel plan.

One :class:`Transceiver` per configured gateway, a supervised adapter and the gateway's keyer.
PTT is ``none`` (the TNC keys itself), ``rig`` (``T 1``/``T 0`` through ``rigctld``) or a
serial port's RTS or DTR (:mod:`radio.ptt`); frequency and mode go through ``rigctld``
(:mod:`radio.rigctl`), so any radio hamlib supports works.

The transmitter is never left keyed by the hub:

- every keying, by the gateway (:meth:`Transceiver.transmitting`) or by hand
  (``KEY_TRANSMITTER``), starts a watchdog timer that unkeys after ``tx_timeout`` seconds
  whatever the keyer's caller does (hangs, is cancelled, never returns);
- ``run`` unkeys first (a crash may have left the line or the rig keyed) and always unkeys on
  the way out; with PTT by the rig, a poll that finds the rig transmitting while the hub has
  not keyed it unkeys it, and an unkey that failed is retried at every poll.

The rig is polled every ``poll_interval`` seconds; its state goes out as ``TRANSCEIVER_CHANGED``
(when it changed) and ``DEVICE_REPORTED`` (device ``radio:{gateway}:rig``, every poll, so the
device registry raises its offline alarm when the rig stops answering). An unreachable rig is
not a failure of the adapter: it is reported offline and retried with a growing pause, warned
about once and then quietly, so a dead ``rigctld`` never turns into a restart loop. A serial
PTT port that cannot be opened is: ``run`` raises :class:`~ops.core.errors.AdapterNotReady` and
the supervisor retries it with its backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ops.core.errors import AdapterNotReady
from ops.core.events import DEVICE_REPORTED, DeviceReported, Figure
from ops.core.supervisor import RestartPolicy
from ops.core.warnonce import WarnOnce
from radio.events import (
    KEY_TRANSMITTER,
    RADIO_FRAME,
    SELECT_CHANNEL,
    TRANSCEIVER_CHANGED,
    KeyTransmitter,
    RadioFrameLogged,
    SelectChannel,
    TransceiverChanged,
)
from radio.ptt import PttError, SerialPtt, SerialPttSpec
from radio.rigctl import RigctlClient, RigError

if TYPE_CHECKING:
    from ops.core.adapter import AdapterContext
    from ops.core.bus import Bus

_LOGGER = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL: Final = 5.0
#: Pause before the next attempt to reach an unreachable rig (within the poll loop).
RIG_BACKOFF: Final = RestartPolicy(initial=1.0, factor=2.0, cap=60.0)
#: Longest the way out of ``run`` spends unkeying and closing.
SHUTDOWN_GRACE: Final = 4.0
DEVICE_KIND: Final = "transceiver"

PttKind = Literal["none", "rig", "serial"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChannelPlan:
    """One named channel of a gateway's plan: frequency (Hz), hamlib mode, passband (Hz)."""

    name: str
    frequency: int
    mode: str = "FM"
    passband: int = 0


@dataclass(eq=False, slots=True)
class _Keying:
    """One keying of the transmitter, from key to unkey."""

    manual: bool
    started: float
    watchdog: asyncio.TimerHandle | None = None
    ended: bool = False
    timed_out: bool = False


@dataclass(slots=True)
class _RigState:
    online: bool = False
    failures: int = 0
    retry_at: float = 0.0
    frequency: int | None = None
    mode: str | None = None
    passband: int | None = None
    warned: bool = False


class Transceiver:
    """PTT and CAT control of one gateway's radio (a supervised adapter and a keyer)."""

    heartbeat_interval: float | None = None

    def __init__(
        self,
        gateway_id: str,
        *,
        ptt: str,
        rig: str | None,
        plan: Sequence[ChannelPlan],
        default_channel: str | None,
        tx_timeout: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        if tx_timeout <= 0 or poll_interval <= 0:
            raise ValueError("tx_timeout and poll_interval must be positive")
        self.gateway_id = gateway_id
        self.name = f"radio-rig:{gateway_id}"
        self.device_id = f"radio:{gateway_id}:rig"
        self.tx_timeout = tx_timeout
        self.poll_interval = poll_interval
        self.plan = {entry.name: entry for entry in plan}
        if default_channel is not None and default_channel not in self.plan:
            raise ValueError(f"default channel {default_channel!r} is not in the plan")
        self._serial_spec: SerialPttSpec | None = None
        self.ptt_kind: PttKind
        if ptt == "none":
            self.ptt_kind = "none"
        elif ptt == "rig":
            if rig is None:
                raise ValueError("ptt = rig needs a rig")
            self.ptt_kind = "rig"
        else:
            self._serial_spec = SerialPttSpec.parse(ptt)
            self.ptt_kind = "serial"
        self._rig = None if rig is None else RigctlClient.from_url(rig)
        self._rig_state = _RigState()
        self._serial: SerialPtt | None = None
        self._serial_broken: PttError | None = None
        self._bus: Bus | None = None
        self._running = False
        self._air = asyncio.Lock()
        self._keying: _Keying | None = None
        self._keyed = False
        self._unkey_owed = False
        self._selected: str | None = None
        self._pending_channel = default_channel
        self._detail = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_state: TransceiverChanged | None = None
        self._warn_once = WarnOnce(_LOGGER)
        self.errors = 0
        self.tx_timeouts = 0

    # -- the keyer -------------------------------------------------------------------------

    def transmitting(self, airtime: float) -> AbstractAsyncContextManager[None]:
        """Key around one transmission of about ``airtime`` seconds; never longer than tx_timeout.

        With ``ptt = none`` it just yields. Raises :class:`~radio.ptt.PttError` (an ``OSError``)
        when the transmitter cannot be keyed: the transceiver is not running, its PTT port or
        rig failed, or another keying held it longer than ``tx_timeout``.
        """
        return self._transmitting(airtime)

    @contextlib.asynccontextmanager
    async def _transmitting(self, airtime: float) -> AsyncIterator[None]:
        if self.ptt_kind == "none":
            yield
            return
        if not self._running:
            raise PttError(errno.ENODEV, f"the transceiver of {self.gateway_id} is not running")
        if airtime > self.tx_timeout:
            self._warn_once(
                "airtime",
                "transceiver %s: %.1f s of airtime is longer than the %.1f s time-out",
                self.gateway_id,
                airtime,
                self.tx_timeout,
            )
        try:
            async with asyncio.timeout(self.tx_timeout + SHUTDOWN_GRACE):
                await self._air.acquire()
        except TimeoutError:
            raise PttError(
                errno.EBUSY, f"the transmitter of {self.gateway_id} stayed busy"
            ) from None
        keying = await self._key(manual=False)
        try:
            yield
        finally:
            # Shielded: a cancelled caller still gets its unkey (the task outlives the cancel).
            await asyncio.shield(self._spawn(self._end(keying, "done")))

    # -- the adapter -----------------------------------------------------------------------

    async def run(self, ctx: AdapterContext) -> None:
        """Unkey, tune the default channel, then serve commands and poll until cancelled."""
        self._bus = ctx.bus
        async with ctx.bus.subscribe(
            [SELECT_CHANNEL, KEY_TRANSMITTER], name=self.name, maxsize=100, replay_state=False
        ) as commands:
            try:
                await self._start(ctx)
                next_poll = time.monotonic()
                while True:
                    wait = next_poll - time.monotonic()
                    envelope = None
                    if wait > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(wait):
                                envelope = await commands.get()
                    if envelope is not None:
                        await self._command(envelope.payload)
                        continue
                    await self._poll(ctx)
                    next_poll = time.monotonic() + self.poll_interval
            finally:
                await self._stop()

    async def _start(self, ctx: AdapterContext) -> None:
        self._serial_broken = None
        if self._serial_spec is not None:
            self._serial = SerialPtt(self._serial_spec)
            try:
                await self._serial.open()  # opens unkeyed: the crash recovery of a serial line
            except PttError as exc:
                self._serial = None
                self.errors += 1
                self._detail = f"PTT port: {exc.strerror or exc}"
                self._publish_state()
                self._report()
                raise AdapterNotReady(self._detail) from exc
            ctx.heartbeat()
        elif self._rig is None:
            ctx.heartbeat()
        self._keyed = False
        self._unkey_owed = self.ptt_kind == "rig"  # crash recovery: unkey at first contact
        self._rig_state.retry_at = 0.0
        self._running = True

    async def _stop(self) -> None:
        """Unkey and close, bounded; runs on every way out of ``run``."""
        self._running = False
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await asyncio.shield(self._spawn(self._shutdown()))
        except TimeoutError:
            _LOGGER.warning("transceiver %s: unkeying on the way out timed out", self.gateway_id)
        # The state, not a device report: a hub shutting down is no offline rig to alarm on.
        self._publish_state()

    async def _shutdown(self) -> None:
        keying = self._keying
        if keying is not None:
            await self._end(keying, "shutdown")
        elif self.ptt_kind == "rig":
            with contextlib.suppress(PttError):
                await self._set_ptt(on=False)
        if self._serial is not None:  # closing unkeys the line
            serial_port, self._serial = self._serial, None
            await serial_port.close()
        if self._rig is not None:
            await self._rig.close()
        self._rig_state.online = False
        pending = {task for task in self._tasks if task is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)

    # -- commands --------------------------------------------------------------------------

    async def _command(self, payload: Any) -> None:
        if isinstance(payload, SelectChannel) and payload.gateway == self.gateway_id:
            await self._select(payload.channel, payload.requested_by)
        elif isinstance(payload, KeyTransmitter) and payload.gateway == self.gateway_id:
            await self._manual(on=payload.on, requested_by=payload.requested_by)

    async def _select(self, name: str, requested_by: str) -> None:
        plan = self.plan.get(name)
        if plan is None:
            _LOGGER.warning(
                "transceiver %s: %s asked for channel %r, not in the plan",
                self.gateway_id,
                requested_by,
                name,
            )
            self._detail = f"unknown channel {name!r}"
        elif self._rig is None:
            self._detail = f"no rig to tune to {name!r}"
        elif not self._rig_state.online:
            self._pending_channel = name
            self._detail = f"channel {name!r} waits for the rig"
        elif self._air.locked():
            # Never retune while transmitting: the next poll after the unkey does it.
            self._pending_channel = name
            self._detail = f"channel {name!r} waits for the transmitter to unkey"
        else:
            await self._tune(plan)
        self._publish_state()

    async def _tune(self, plan: ChannelPlan) -> None:
        """Set frequency and mode, then read both back (the rig has the last word)."""
        rig = self._rig
        assert rig is not None  # noqa: S101 - only called with a rig
        self._pending_channel = None
        try:
            await rig.set_frequency(plan.frequency)
            await rig.set_mode(plan.mode, plan.passband)
            frequency = await rig.get_frequency()
            mode, passband = await rig.get_mode()
        except RigError as exc:
            self.errors += 1
            self._detail = f"channel {plan.name!r} refused: {exc}"
            _LOGGER.warning("transceiver %s: %s", self.gateway_id, self._detail)
            return
        except (OSError, TimeoutError) as exc:
            self._pending_channel = plan.name
            self._rig_down(exc)
            return
        self._selected = plan.name
        state = self._rig_state
        state.frequency, state.mode, state.passband = frequency, mode, passband
        if frequency != plan.frequency:
            self._detail = f"channel {plan.name!r}: the rig reports {frequency} Hz"
            _LOGGER.warning("transceiver %s: %s", self.gateway_id, self._detail)
        else:
            self._detail = ""
            _LOGGER.info("transceiver %s: tuned to %s", self.gateway_id, plan.name)

    async def _manual(self, *, on: bool, requested_by: str) -> None:
        if self.ptt_kind == "none":
            self._detail = "the TNC keys itself: no manual PTT"
        elif on:
            if self._air.locked():
                self._detail = "the transmitter is busy"
            else:
                await self._air.acquire()
                try:
                    await self._key(manual=True)
                except PttError as exc:
                    self._detail = f"cannot key: {exc.strerror or exc}"
                else:
                    self._detail = ""
                    _LOGGER.info("transceiver %s: keyed by %s", self.gateway_id, requested_by)
                    self._log_ptt("PTT on")
        else:
            keying = self._keying
            if keying is not None and keying.manual:
                await self._end(keying, "by hand")
            elif keying is None and self._keyed:
                with contextlib.suppress(PttError):
                    await self._set_ptt(on=False)
        self._publish_state()

    # -- keying ----------------------------------------------------------------------------

    async def _key(self, *, manual: bool) -> _Keying:
        """Key (the caller holds ``_air``; released here on failure, by :meth:`_end` after)."""
        keying = _Keying(manual=manual, started=time.monotonic())
        try:
            await self._set_ptt(on=True)
        except BaseException:
            self._air.release()
            # The line may have moved before the failure (or the cancel): unkey to be sure.
            self._spawn(self._unkey_quietly())
            raise
        keying.watchdog = asyncio.get_running_loop().call_later(
            self.tx_timeout, self._expire, keying
        )
        self._keying = keying
        self._publish_state()
        return keying

    def _expire(self, keying: _Keying) -> None:
        """The watchdog: unkey whatever the keyer's caller is doing."""
        if keying.ended:
            return
        keying.timed_out = True
        self.tx_timeouts += 1
        _LOGGER.warning(
            "transceiver %s: keyed for %.1f s, unkeying (transmit time-out)",
            self.gateway_id,
            self.tx_timeout,
        )
        self._spawn(self._end(keying, "time-out"))

    async def _end(self, keying: _Keying, why: str) -> None:
        """Unkey one keying, once, and free the transmitter."""
        if keying.ended:
            return
        keying.ended = True
        if keying.watchdog is not None:
            keying.watchdog.cancel()
        if self._keying is keying:
            self._keying = None
        try:
            await self._set_ptt(on=False)
        except PttError as exc:
            self._detail = f"cannot unkey: {exc.strerror or exc}"
        finally:
            self._air.release()
            seconds = time.monotonic() - keying.started
            if keying.manual:
                suffix = " (time-out)" if keying.timed_out else ""
                self._log_ptt(f"PTT off after {seconds:.1f} s{suffix}")
            _LOGGER.debug("transceiver %s: unkeyed (%s)", self.gateway_id, why)
            self._publish_state()

    async def _unkey_quietly(self) -> None:
        with contextlib.suppress(PttError):
            await self._set_ptt(on=False)

    async def _set_ptt(self, *, on: bool) -> None:
        """Move the PTT; on failure remember that an unkey is owed (the poll retries it)."""
        try:
            await self._move_ptt(on=on)
        except PttError as exc:
            self.errors += 1
            if not on:
                self._unkey_owed = True
            # An unreachable rig was warned about once already; each try is not news.
            quiet = self.ptt_kind == "rig" and not self._rig_state.online
            _LOGGER.log(
                logging.DEBUG if quiet else logging.WARNING,
                "transceiver %s: cannot %s: %s",
                self.gateway_id,
                "key" if on else "unkey",
                exc.strerror or exc,
            )
            raise
        self._keyed = on
        if not on:
            self._unkey_owed = False

    async def _move_ptt(self, *, on: bool) -> None:
        if self.ptt_kind == "serial":
            port = self._serial
            if port is None:
                raise PttError(errno.EBADF, "the PTT port is not open")
            try:
                await port.set(on)
            except PttError as exc:
                if exc.errno != errno.ETIMEDOUT:
                    self._serial_broken = exc
                raise
        elif self.ptt_kind == "rig":
            rig = self._rig
            assert rig is not None  # noqa: S101 - ptt = rig has a rig
            try:
                await rig.set_ptt(on)
            except RigError as exc:
                raise PttError(errno.EIO, str(exc)) from exc
            except (OSError, TimeoutError) as exc:
                self._rig_down(exc)
                raise PttError(errno.EIO, f"rig unreachable: {exc}") from exc

    # -- polling ---------------------------------------------------------------------------

    async def _poll(self, ctx: AdapterContext) -> None:
        if self._serial_broken is not None:
            raise AdapterNotReady(
                f"PTT port: {self._serial_broken.strerror or self._serial_broken}"
            )
        if self._unkey_owed and not self._air.locked() and self.ptt_kind == "serial":
            with contextlib.suppress(PttError):
                await self._set_ptt(on=False)
        if self._rig is not None and time.monotonic() >= self._rig_state.retry_at:
            await self._poll_rig(ctx)
        self._publish_state()
        self._report()

    async def _poll_rig(self, ctx: AdapterContext) -> None:
        rig = self._rig
        assert rig is not None  # noqa: S101
        state = self._rig_state
        rig_ptt: bool | None = None
        try:
            if self._unkey_owed and not self._air.locked() and self.ptt_kind == "rig":
                await self._rig_call(self._unkey_rig(rig))
            frequency = await rig.get_frequency()
            mode, passband = await rig.get_mode()
            if self.ptt_kind == "rig":
                rig_ptt = await self._rig_call(rig.get_ptt())
        except RigError as exc:
            self._rig_up()
            self._rig_refused(exc)
            return
        except (OSError, TimeoutError) as exc:
            self._rig_down(exc)
            return
        self._rig_up()
        ctx.heartbeat()
        state.frequency, state.mode, state.passband = frequency, mode, passband
        if rig_ptt is not None:
            if rig_ptt and not self._air.locked():
                # Keyed by nobody the hub knows of (a crash, a stuck command): unkey.
                _LOGGER.warning(
                    "transceiver %s: the rig transmits unasked; unkeying", self.gateway_id
                )
                self._unkey_owed = True
                await self._unkey_quietly()
            else:
                self._keyed = rig_ptt
        pending = self._pending_channel
        if pending is not None and pending in self.plan and not self._air.locked():
            await self._tune(self.plan[pending])

    async def _unkey_rig(self, rig: RigctlClient) -> None:
        await rig.set_ptt(False)
        self._keyed = False
        self._unkey_owed = False

    async def _rig_call(self, call: Coroutine[Any, Any, T]) -> T | None:
        """A PTT command of the poll: refused (a rig without CAT PTT) is reported, not fatal."""
        try:
            return await call
        except RigError as exc:
            self._rig_refused(exc)
            return None

    def _rig_refused(self, exc: RigError) -> None:
        self.errors += 1
        self._detail = f"rig: {exc}"
        self._warn_once(("rig", exc.command, exc.code), "transceiver %s: %s", self.gateway_id, exc)

    def _rig_up(self) -> None:
        state = self._rig_state
        if not state.online and state.failures:
            _LOGGER.info("transceiver %s: the rig answers again", self.gateway_id)
        if not state.online and self._detail.startswith("rig unreachable"):
            self._detail = ""
        state.online = True
        state.failures = 0
        state.warned = False

    def _rig_down(self, exc: BaseException) -> None:
        state = self._rig_state
        self.errors += 1
        if not state.warned:
            _LOGGER.warning("transceiver %s: rig unreachable: %s", self.gateway_id, exc)
            state.warned = True
        else:
            _LOGGER.debug("transceiver %s: rig still unreachable: %s", self.gateway_id, exc)
        state.online = False
        jitter = random.random()  # noqa: S311 - backoff jitter, not cryptography
        state.retry_at = time.monotonic() + RIG_BACKOFF.delay(state.failures, jitter)
        state.failures += 1
        self._detail = f"rig unreachable: {exc}"

    # -- what goes on the bus ----------------------------------------------------------------

    def state(self) -> TransceiverChanged:
        """The transceiver as the console shows it."""
        rig = self._rig_state
        return TransceiverChanged(
            gateway=self.gateway_id,
            rig_online=rig.online,
            channel=self._channel(),
            frequency=rig.frequency,
            mode=rig.mode,
            ptt=self._keyed,
            detail=self._detail,
        )

    def _channel(self) -> str | None:
        """The plan's channel the rig is on (the one selected first), None when off-plan."""
        frequency = self._rig_state.frequency
        if frequency is None:
            return None
        selected = self.plan.get(self._selected or "")
        if selected is not None and selected.frequency == frequency:
            return selected.name
        for entry in self.plan.values():
            if entry.frequency == frequency:
                return entry.name
        return None

    def _publish_state(self) -> None:
        if self._bus is None:
            return
        state = self.state()
        if state != self._last_state:
            self._last_state = state
            self._bus.publish(TRANSCEIVER_CHANGED, state, source=self.name, key=self.gateway_id)

    def _report(self) -> None:
        if self._bus is None:
            return
        rig = self._rig_state
        online = (
            rig.online if self._rig is not None else (self._running and self._serial_broken is None)
        )
        figures: dict[str, Figure] = {
            "frequency": rig.frequency,
            "mode": rig.mode,
            "channel": self._channel(),
            "ptt": self._keyed,
            "rig_online": rig.online,
            "errors": self.errors,
            "tx_timeouts": self.tx_timeouts,
        }
        self._bus.publish(
            DEVICE_REPORTED,
            DeviceReported(self.device_id, DEVICE_KIND, figures, online=online),
            source=self.name,
            key=self.device_id,
        )

    def _log_ptt(self, text: str) -> None:
        if self._bus is None:
            return
        self._bus.publish(
            RADIO_FRAME,
            RadioFrameLogged(
                at=datetime.now(UTC),
                gateway=self.gateway_id,
                direction="out",
                kind="ptt",
                callsign="",
                text=text,
                channel=self._channel(),
            ),
            source=self.name,
            key=self.gateway_id,
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine, name=f"{self.name}:ptt")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
