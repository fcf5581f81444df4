"""The link's topic matcher agrees with paho's on every filter and topic (and skips $share/)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from devices.mqtt.link import topic_matches

LEVEL = st.sampled_from(["a", "b", "devices", "", "$SYS", "x1"])
FILTER_LEVEL = st.sampled_from(["a", "b", "devices", "", "+", "$SYS"])


@given(
    st.lists(FILTER_LEVEL, min_size=1, max_size=5),
    st.booleans(),
    st.lists(LEVEL, min_size=1, max_size=6),
)
def test_same_answers_as_paho(
    filter_levels: list[str], hash_tail: bool, topic_levels: list[str]
) -> None:
    topic_filter = "/".join([*filter_levels, "#"] if hash_tail else filter_levels)
    topic = "/".join(topic_levels)
    assert topic_matches(topic_filter, topic) is topic_matches_sub(topic_filter, topic)


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("$share/g/p/devices/+/telemetry", "p/devices/d1/telemetry", True),
        ("$share/g/p/devices/+/telemetry", "p/devices/d1/status", False),
        ("#", "p/x", True),
        ("p/#", "p", True),
        ("+/x", "$SYS/x", False),
    ],
)
def test_examples(topic_filter: str, topic: str, expected: bool) -> None:
    assert topic_matches(topic_filter, topic) is expected
