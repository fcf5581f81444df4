"""Liveness, readiness and metrics of a real hub."""

from __future__ import annotations

import re

import pytest

from ops.app import Hub
from ops.web.app import create_app
from tests.fixtures.hub import LoginAs, WebClient, wait_ready

pytestmark = [pytest.mark.postgres, pytest.mark.broker]


async def test_healthz_answers_while_alive(web_client: WebClient) -> None:
    async with web_client.get("/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"alive": True}


async def test_readyz_reports_each_check(hub: Hub, web_client: WebClient) -> None:
    await wait_ready(hub)
    async with web_client.get("/readyz") as response:
        assert response.status == 200
        assert await response.json() == {"ready": True, "checks": {"database": True, "mqtt": True}}


async def test_readyz_is_503_with_the_same_shape_when_the_broker_is_gone(
    hub: Hub, web_client: WebClient
) -> None:
    await wait_ready(hub)
    await hub.supervisor.stop("mqtt")
    async with web_client.get("/readyz") as response:
        assert response.status == 503
        assert await response.json() == {
            "ready": False,
            "checks": {"database": True, "mqtt": False},
        }


async def test_metrics_expose_hub_bus_mqtt_live_and_http_figures(
    hub: Hub, web_client: WebClient, login_as: LoginAs
) -> None:
    await wait_ready(hub)
    viewer = await login_as("viewer")
    async with viewer.get("/api/v1/hub/status") as response:
        assert response.status == 200
    async with web_client.get("/no/such/page") as response:
        assert response.status == 404
    async with viewer.ws_connect() as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        async with web_client.get("/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()

    samples = _samples(text)
    assert samples["posko_up"] == 1
    assert samples["posko_ready"] == 1
    assert samples['posko_adapter_state{adapter="mqtt",state="running"}'] == 1
    assert samples['posko_adapter_state{adapter="mqtt",state="backoff"}'] == 0
    assert 'posko_adapter_restarts_total{adapter="mqtt"}' in samples
    assert samples["posko_bus_events_published_total"] >= 1
    assert samples["posko_live_clients"] == 1
    assert any(name.startswith("posko_bus_subscriber_queue_depth{subscriber=") for name in samples)
    assert any(
        name.startswith("posko_bus_subscriber_dropped_total{subscriber=") for name in samples
    )
    assert "posko_mqtt_messages_received_total" in samples
    assert "posko_mqtt_messages_sent_total" in samples
    assert (
        samples['posko_http_requests_total{method="GET",route="/api/v1/hub/status",status="200"}']
        == 1
    )
    # Unknown paths share one label value, so scanners cannot grow the series without bound.
    assert samples['posko_http_requests_total{method="GET",route="unmatched",status="404"}'] == 1
    assert not any("/no/such/page" in name for name in samples)
    assert samples['posko_http_request_duration_seconds_count{route="/api/v1/hub/status"}'] == 1


async def test_each_app_has_its_own_registry(hub: Hub, web_client: WebClient) -> None:
    """More apps in one process neither clash (a global registry would) nor mix counts."""
    create_app(hub)
    create_app(hub)
    async with web_client.get("/healthz") as response:
        assert response.status == 200
    async with web_client.get("/metrics") as response:
        text = await response.text()
    assert (
        _samples(text)['posko_http_requests_total{method="GET",route="/healthz",status="200"}'] == 1
    )


def _samples(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (comments skipped)."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(\S+?(?:\{.*\})?) (\S+)", line)
        assert match is not None, line
        samples[match.group(1)] = float(match.group(2))
    return samples
