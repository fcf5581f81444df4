"""A radio gateway in the hub's device registry: its TNC gone is an offline alarm, back is online.

The gateway runs on the hub's bus against a KISS-over-TCP TNC played by the test; the registry
(with the real database) judges its reports like any device's.
"""

from __future__ import annotations

import pytest

from ops.app import Hub
from ops.devicehealth import service_of
from ops.devicehealth.events import DEVICE_ALARM
from radio.gateway import Gateway
from tests.component.radio_support import FAST_BACKOFF, TcpTnc, frame, running
from tests.fixtures.hub import TEST_RESTART_POLICY, ConfigFactory, unique_name
from tests.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.broker]

WAIT = 15.0


def state(hub: Hub, device_id: str) -> str | None:
    entry = service_of(hub).service.devices.get(device_id)
    return None if entry is None else entry.health.state.value


async def test_a_gateway_whose_tnc_goes_away_is_offline_with_an_alarm_and_back(
    device_hub_config: ConfigFactory,
) -> None:
    config = device_hub_config(devices={"hysteresis": 0.3, "offline_after": 30.0})
    tnc = TcpTnc()
    await tnc.start()
    port = tnc.port
    async with Hub(config, restart_policy=TEST_RESTART_POLICY) as hub:
        gateway = Gateway(unique_name("gw"), tnc.url, backoff=FAST_BACKOFF, report_every=0.2)
        device_id = gateway.device_id
        async with hub.bus.subscribe(DEVICE_ALARM, name="test-alarms") as alarms:
            try:
                async with running(gateway, hub.bus):
                    await eventually(lambda: state(hub, device_id) == "online", timeout=WAIT)
                    entry = service_of(hub).service.entry(device_id)
                    assert entry.kind == "radio_gateway"
                    await tnc.stop()  # the TNC is gone, and refuses new connections
                    await eventually(lambda: state(hub, device_id) == "offline", timeout=WAIT)
                    # Other tests' devices share the database: their alarms go by on this bus too.
                    raised = (await alarms.get()).payload
                    while raised.device_id != device_id:
                        raised = (await alarms.get()).payload
                    assert (raised.code, raised.action) == ("offline", "raised")
                    gateway.transmit(frame("POSKO", b">kept", destination="APZPSK"))
                    tnc = TcpTnc()
                    tnc.port = port
                    await tnc.start()
                    await eventually(lambda: state(hub, device_id) == "online", timeout=WAIT)
                    assert [f.info for f in await tnc.wait_frames(1)] == [b">kept"]
                    await eventually(
                        lambda: (
                            service_of(hub)
                            .service.entry(device_id)
                            .health.figures.get("queue_depth")
                            == 0
                            and service_of(hub)
                            .service.entry(device_id)
                            .health.figures.get("frames_out")
                            == 1
                        ),
                        timeout=WAIT,
                    )
            finally:
                await tnc.stop()
