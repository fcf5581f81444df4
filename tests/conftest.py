"""Shared test set-up: fixture plugins."""

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.database",
    "tests.fixtures.hub",
    "tests.fixtures.devices",
]
