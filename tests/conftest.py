"""Shared test set-up: fixture plugins and the guards every test runs under.

Every test fails when it leaves an asyncio task running (one it or its fixtures started and
did not end) or when anything logs at ERROR or above while it runs; a test that provokes an
error on purpose says so with ``@pytest.mark.allow_error_log`` (optionally ``match=`` regular
expressions the allowed messages must match). Unit tests may not use the database or broker
fixtures, so they run on a machine with neither installed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.database",
    "tests.fixtures.hub",
    "tests.fixtures.devices",
]

UNIT_DIR = Path(__file__).parent / "unit"
#: Fixtures that start or reach a database server or MQTT broker; unit tests use none of them.
SERVER_FIXTURES = frozenset(
    {
        "pg_server_dsn",
        "pg_dsn",
        "db_pool",
        "fresh_database",
        "pg_data_dir",
        "mqtt_broker",
        "mqtt_prefix",
        "broker_process",
        "device_broker",
        "make_hub_config",
        "device_hub_config",
        "hub_config",
        "hub",
    }
)
#: Tasks a session-long server owns and starts per client connection (the embedded amqtt
#: broker runs in the test process); they end when that client's session is cleaned up.
_SERVER_TASK_SOURCES = ("/amqtt/",)
#: Loop turns a cancelled task gets to finish before it counts as leaked.
_SETTLE_TURNS = 20
#: Seconds leaked tasks get to end once cancelled.
_CANCEL_GRACE = 2.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a unit test that asks for a server: unit tests run without any installed."""
    for item in items:
        path = Path(str(item.path))
        if UNIT_DIR not in path.parents:
            continue
        used = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(
                f"{item.nodeid} is a unit test but uses {', '.join(sorted(used))}: "
                "move it to tests/integration or give it no server"
            )


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _fail_on_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when anything logs at ERROR or above, unless the test allows it."""
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    marker = request.node.get_closest_marker("allow_error_log")
    patterns = [re.compile(p) for p in (marker.kwargs.get("match", ()) if marker else ())]
    unexpected = [
        record
        for record in handler.records
        if marker is None or (patterns and not any(p.search(record.getMessage()) for p in patterns))
    ]
    if unexpected:
        lines = "\n".join(f"  {r.levelname} {r.name}: {r.getMessage()}" for r in unexpected[:10])
        pytest.fail(
            f"{len(unexpected)} unexpected ERROR log record(s) "
            f"(mark the test allow_error_log if it expects them):\n{lines}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
async def _fail_on_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test when a task started during it is still pending after its fixtures ended."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    leaked: set[asyncio.Task[object]] = set()
    for _ in range(_SETTLE_TURNS):
        leaked = {
            task
            for task in asyncio.all_tasks() - before
            if task is not current and not task.done() and not _server_task(task)
        }
        if not leaked:
            return
        await asyncio.sleep(0)
    names = "\n".join(f"  {task.get_name()}: {task.get_coro()!r}" for task in leaked)
    for task in leaked:
        task.cancel()
    # Bounded: a task that ignores cancellation must not hang the run.
    await asyncio.wait(leaked, timeout=_CANCEL_GRACE)
    pytest.fail(f"{len(leaked)} task(s) left running after the test:\n{names}", pytrace=False)


def _server_task(task: asyncio.Task[object]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    source = "" if code is None else str(code.co_filename)
    return any(part in source for part in _SERVER_TASK_SOURCES)
