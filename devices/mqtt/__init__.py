"""The MQTT link of the hub and the embedded broker."""
