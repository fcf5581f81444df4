"""Bad input is logged once per source, for a bounded number of sources."""

from __future__ import annotations

import logging

import pytest

from ops.core.warnonce import WarnOnce


def test_each_key_once_then_one_line_past_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    warn = WarnOnce(logging.getLogger("test.warnonce"), limit=2)
    with caplog.at_level(logging.WARNING, logger="test.warnonce"):
        assert warn("a", "bad %s", "a")
        assert not warn("a", "bad %s", "a")
        assert warn("b", "bad %s", "b")
        assert not warn("c", "bad %s", "c")
        assert not warn("d", "bad %s", "d")
    assert [r.getMessage() for r in caplog.records] == [
        "bad a",
        "bad b",
        "more than 2 sources of dropped input; the rest are only counted",
    ]
