"""HTTP API, live socket and operator console."""
