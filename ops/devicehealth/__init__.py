"""Device health: registry, health evaluation, alarms with escalation, and the health history.

``setup(hub)`` is the hub's domain hook; ``service_of(hub)`` gives the web layer the running
service of a hub.
"""

from ops.devicehealth.setup import DeviceHealthParts, service_of, setup

__all__ = ["DeviceHealthParts", "service_of", "setup"]
