"""Start the case domain on a hub: SLA watch, panic buttons, email and the external connector."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ops.cases.sla import SlaWatcher
from ops.intake.connector import ExternalConnector
from ops.intake.email import SmtpIntake
from ops.intake.panic import PanicIntake

if TYPE_CHECKING:
    from ops.app import Hub

_LOGGER = logging.getLogger(__name__)


async def setup(hub: Hub) -> None:
    """Subscribe the panic topic and start the case adapters (each optional one when configured)."""
    cfg = hub.config
    hub.supervisor.start(SlaWatcher(hub.pool, cfg.cases.sla_check_seconds))
    panic = PanicIntake(hub.pool, hub.bus, cfg.cases)
    hub.supervisor.start(panic)
    hub.mqtt.subscribe(hub.mqtt.topic("panic", "+"), panic.handle, qos=1)
    if cfg.intake.smtp_port is not None:
        hub.supervisor.start(SmtpIntake(hub.pool, hub.bus, cfg.intake, cfg.cases))
    if cfg.intake.connector_url is not None:
        hub.supervisor.start(ExternalConnector(hub.pool, hub.bus, cfg.intake, cfg.cases))
    _LOGGER.debug("case domain started")
