"""The guards every test runs under: a leaked task, an unexpected ERROR log and a unit test
asking for a server each fail, and a test that declares its expected error passes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

CONFTEST = """
from pathlib import Path

import tests.conftest as guards
from tests.conftest import (
    _fail_on_error_logs,
    _fail_on_leaked_tasks,
    pytest_collection_modifyitems,
)

guards.UNIT_DIR = Path(__file__).parent / "unit"
"""
INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
markers =
    allow_error_log: expected errors
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    return pytester


def test_a_leaked_task_fails_the_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import asyncio

        async def test_leaks():
            asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="forgotten")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 task(s) left running after the test*", "*forgotten*"])


def test_an_error_log_fails_unless_the_test_expects_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import logging
        import pytest

        def test_logs_an_error():
            logging.getLogger("x").error("boom")

        @pytest.mark.allow_error_log(match=["^boom$"])
        def test_expects_it():
            logging.getLogger("x").error("boom")

        @pytest.mark.allow_error_log(match=["^boom$"])
        def test_expects_another():
            logging.getLogger("x").error("bang")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*unexpected ERROR log record*", "*ERROR x: boom*"])


def test_a_unit_test_asking_for_a_server_is_refused(inner: pytest.Pytester) -> None:
    inner.mkpydir("unit")
    inner.path.joinpath("unit", "test_db.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef db_pool():\n    return None\n\n"
        "def test_uses(db_pool):\n    pass\n"
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_uses is a unit test but uses db_pool*"])
