"""Runtime core: config, bus, adapters and their supervisor, and the hub as domains see it.

Imports no other Posko package (checked by the `core` contract in pyproject.toml).
"""
