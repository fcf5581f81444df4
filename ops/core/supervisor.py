"""Runs adapters and restarts them: jittered exponential backoff, staleness watch, alarms.

Transient failures (``AdapterNotReady``, ``OSError``, ``TimeoutError``, a stale heartbeat) and
unknown errors back off and retry; configuration and auth errors stop the adapter and raise an
alarm, because retrying them forever only hides the problem.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ops.core.adapter import Adapter, AdapterContext
from ops.core.bus import Bus
from ops.core.errors import AdapterAuthError, AdapterConfigError, AdapterNotReady, AdapterStale
from ops.core.events import (
    ADAPTER_STATUS,
    ALARM_RAISED,
    AdapterState,
    AdapterStatus,
    AlarmRaised,
    Severity,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How the supervisor restarts a failing adapter."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2
    reset_after: float = 300.0
    storm_restarts: int = 5
    storm_window: float = 60.0
    stale_factor: float = 4.5

    def delay(self, failures: int, rand: float) -> float:
        """Backoff before retry number ``failures`` (0-based), with ``rand`` in [0, 1) as jitter.

        The cap bounds the jittered delay, so no retry ever waits longer than ``cap``; capped
        retries still spread out below it.
        """
        base = min(self.cap, self.initial * self.factor ** max(failures, 0))
        return min(self.cap, max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0))))


class Supervisor:
    """Owns one task per adapter and stops them in reverse start order."""

    def __init__(
        self,
        bus: Bus,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self._bus = bus
        self._policy = policy or RestartPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._stop_timeout = stop_timeout
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._policies: dict[str, RestartPolicy] = {}
        self.status: dict[str, AdapterStatus] = {}

    def start(self, adapter: Adapter, policy: RestartPolicy | None = None) -> None:
        """Begin supervising ``adapter``; its name must be unique."""
        if adapter.name in self._tasks:
            raise ValueError(f"adapter {adapter.name!r} is already supervised")
        self._policies[adapter.name] = policy or self._policy
        self._tasks[adapter.name] = asyncio.create_task(
            self._supervise(adapter), name=f"supervise:{adapter.name}"
        )

    async def stop(self, name: str) -> None:
        """Cancel one adapter and wait (bounded) for it to end."""
        task = self._tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        # The supervising task itself grants the run ``stop_timeout`` to end; allow it that.
        done, _ = await asyncio.wait({task}, timeout=2 * self._stop_timeout)
        if not done:
            _LOGGER.error("adapter %s did not stop within %.1f s", name, 2 * self._stop_timeout)
            return
        with contextlib.suppress(asyncio.CancelledError):
            exc = task.exception()
            if exc is not None:
                _LOGGER.error("adapter %s ended with %r", name, exc)

    async def stop_all(self) -> None:
        """Stop every adapter, newest first, so later adapters never outlive what they use."""
        for name in reversed(list(self._tasks)):
            await self.stop(name)

    @property
    def names(self) -> list[str]:
        """Names of the supervised adapters in start order."""
        return list(self._tasks)

    async def _supervise(self, adapter: Adapter) -> None:
        name = adapter.name
        policy = self._policies[name]
        failures = 0
        restarts = 0
        recent: collections.deque[float] = collections.deque()
        try:
            while True:
                ctx = AdapterContext(
                    name,
                    self._bus,
                    on_first_heartbeat=functools.partial(
                        self._set, name, AdapterState.RUNNING, "", restarts
                    ),
                    clock=self._clock,
                )
                self._set(name, AdapterState.STARTING, "", restarts)
                error = await self._run_once(adapter, ctx, policy)
                if isinstance(error, AdapterConfigError | AdapterAuthError):
                    self._fail(name, error, restarts)
                    return
                if ctx.running_since is not None and (
                    self._clock() - ctx.running_since >= policy.reset_after
                ):
                    failures = 0
                delay = policy.delay(failures, self._rand())
                self._log_failure(name, error, failures)
                failures += 1
                restarts += 1
                self._check_storm(name, recent, policy)
                self._set(name, AdapterState.BACKOFF, _describe(error), restarts, delay)
                await self._sleep(delay)
        except asyncio.CancelledError:
            self._set(name, AdapterState.STOPPED, "", restarts)
            raise

    async def _run_once(
        self, adapter: Adapter, ctx: AdapterContext, policy: RestartPolicy
    ) -> BaseException:
        """Run the adapter once; return why it ended. Cancellation of the caller propagates."""
        task = asyncio.create_task(adapter.run(ctx), name=f"adapter:{adapter.name}")
        interval = adapter.heartbeat_interval
        try:
            while True:
                timeout = None if interval is None else max(interval / 2.0, 0.01)
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if done:
                    break
                assert interval is not None  # noqa: S101 - wait() without timeout never returns empty
                silent = self._clock() - ctx.last_heartbeat
                if silent > policy.stale_factor * interval:
                    await _cancel(task, self._stop_timeout)
                    return AdapterStale(f"no heartbeat for {silent:.1f} s")
        except asyncio.CancelledError:
            await _cancel(task, self._stop_timeout)
            raise
        if task.cancelled():
            return AdapterNotReady("run was cancelled from inside")
        error = task.exception()
        if error is None:
            return AdapterNotReady("run returned; an adapter must run until cancelled")
        return error

    def _set(
        self,
        name: str,
        state: AdapterState,
        detail: str,
        restarts: int,
        retry_in: float | None = None,
    ) -> None:
        previous = self.status.get(name)
        status = AdapterStatus(name, state, detail, restarts, retry_in)
        self.status[name] = status
        if (
            previous is not None
            and previous.state is AdapterState.BACKOFF
            and (state is AdapterState.RUNNING)
        ):
            _LOGGER.info("adapter %s recovered", name)
        self._bus.publish(ADAPTER_STATUS, status, source="supervisor", key=name)

    def _fail(self, name: str, error: BaseException, restarts: int) -> None:
        _LOGGER.error("adapter %s stopped: %s", name, error)
        self._set(name, AdapterState.FAILED, _describe(error), restarts)
        self._bus.publish(
            ALARM_RAISED,
            AlarmRaised(
                source=f"adapter:{name}",
                code="adapter_failed",
                message=f"{name} stopped and will not retry: {error}",
                severity=Severity.CRITICAL,
            ),
            source="supervisor",
            key=name,
        )

    def _check_storm(
        self, name: str, recent: collections.deque[float], policy: RestartPolicy
    ) -> None:
        now = self._clock()
        recent.append(now)
        while recent and now - recent[0] > policy.storm_window:
            recent.popleft()
        if len(recent) > policy.storm_restarts:
            recent.clear()
            self._bus.publish(
                ALARM_RAISED,
                AlarmRaised(
                    source=f"adapter:{name}",
                    code="restart_storm",
                    message=(
                        f"{name} restarted more than {policy.storm_restarts} times "
                        f"in {policy.storm_window:.0f} s"
                    ),
                ),
                source="supervisor",
                key=name,
            )

    @staticmethod
    def _log_failure(name: str, error: BaseException, failures: int) -> None:
        known = isinstance(error, AdapterNotReady | AdapterStale | OSError | TimeoutError)
        if not known:
            _LOGGER.error("adapter %s crashed", name, exc_info=error)
        elif failures == 0:
            _LOGGER.warning("adapter %s failed: %s", name, _describe(error))
        else:
            _LOGGER.debug("adapter %s failed again: %s", name, _describe(error))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def _cancel(task: asyncio.Task[None], grace: float) -> None:
    """Cancel a run and wait for it, bounded, so a stuck adapter cannot stall shutdown."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        _LOGGER.error("task %s ignored cancellation for %.1f s", task.get_name(), grace)
    elif not task.cancelled() and task.exception() is not None:
        _LOGGER.debug("task %s ended with %r while cancelled", task.get_name(), task.exception())
