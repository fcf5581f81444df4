"""Start the intake channels on a hub: panic buttons, and email and the external connector.

Each channel files cases through ``ops.cases.intake``; the optional ones start only when
configured (``[intake] smtp_port``, ``[intake] connector_url``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ops.intake.connector import ExternalConnector
from ops.intake.email import SmtpIntake
from ops.intake.panic import PanicIntake

if TYPE_CHECKING:
    from ops.core.hub import HubContext

_LOGGER = logging.getLogger(__name__)


async def setup(hub: HubContext) -> None:
    """Subscribe the panic topic and start the intake adapters (the optional ones if configured)."""
    cfg = hub.config
    panic = PanicIntake(hub.pool, hub.bus, cfg.cases)
    hub.supervisor.start(panic)
    hub.mqtt.subscribe(hub.mqtt.topic("panic", "+"), panic.handle, qos=1)
    if cfg.intake.smtp_port is not None:
        hub.supervisor.start(SmtpIntake(hub.pool, hub.bus, cfg.intake, cfg.cases))
    if cfg.intake.connector_url is not None:
        hub.supervisor.start(ExternalConnector(hub.pool, hub.bus, cfg.intake, cfg.cases))
    _LOGGER.debug("intake started")
