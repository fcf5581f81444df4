"""Start the case domain on a hub: the SLA watch.

The channels that file cases (panic buttons, email, the external connector) are the intake
domain's, started by ``ops.intake.setup`` above this one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ops.cases.sla import SlaWatcher

if TYPE_CHECKING:
    from ops.core.hub import HubContext

_LOGGER = logging.getLogger(__name__)


async def setup(hub: HubContext) -> None:
    """Start the SLA watch."""
    hub.supervisor.start(SlaWatcher(hub.pool, hub.config.cases.sla_check_seconds))
    _LOGGER.debug("case domain started")
