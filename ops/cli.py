"""The ``posko`` command: ``up``, ``db migrate``, ``user add``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ops.core.config import Config, load_config
from ops.core.errors import ConfigError, PoskoError
from ops.users import Role, validate_new_user

_LOGGER = logging.getLogger("posko")

PASSWORD_VARIABLE = "POSKO_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
#: ``posko sim KIND``: the simulators that run on their own, by module (each has ``main(argv)``).
SIMULATORS = {
    "mqtt-devices": "devices.mqtt.simulator",
    "radio": "radio.simulator",
    "unit-app": "devices.mqtt.unitapp",
}
#: Simulators on the broker: they get the hub's broker and prefix unless told otherwise.
BROKER_SIMULATORS = frozenset({"mqtt-devices", "unit-app"})
NOISY_LOGGERS = ("amqtt", "transitions", "aiohttp.access")
#: Seconds a one-shot command keeps trying a database server that is not up yet.
DEFAULT_DATABASE_WAIT = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, os.environ)
    except ConfigError as exc:
        print(f"posko: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own error output
        return 2
    _setup_logging(config)
    try:
        return int(args.handler(args, config))
    except ConfigError as exc:
        print(f"posko: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except PoskoError as exc:
        print(f"posko: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posko", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML config file (default: ./posko.toml)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the hub")
    up.add_argument(
        "--demo",
        action="store_true",
        help="also run the demo room: simulated units and devices on the broker, a demo wall",
    )
    up.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    up.set_defaults(handler=_up)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    migrate = db_commands.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    _add_wait_option(migrate)
    migrate.set_defaults(handler=_db_migrate)

    user = commands.add_parser("user", help="user accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser(
        "add", help=f"create a user (password from a prompt or ${PASSWORD_VARIABLE})"
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[role.value for role in Role])
    add.add_argument("--display-name", default=None)
    add.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    _add_wait_option(add)
    add.set_defaults(handler=_user_add)

    sim = commands.add_parser(
        "sim",
        help="run one field simulator (MQTT devices or apps on the configured broker, a radio TNC)",
        description="Extra arguments go to the simulator; see `posko sim KIND --help`.",
    )
    sim.add_argument("kind", choices=sorted(SIMULATORS))
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="the simulator's own options")
    sim.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sim.set_defaults(handler=_sim)
    return parser


def _add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_DATABASE_WAIT,
        metavar="SECONDS",
        help="how long to keep trying a database server that is not up yet "
        f"(default {DEFAULT_DATABASE_WAIT:g})",
    )


def _sim(args: argparse.Namespace, config: Config) -> int:
    """Run a simulator against this hub (its broker, its radio callsign) unless told otherwise."""
    if args.kind in BROKER_SIMULATORS:
        host, port = config.mqtt.host_port
        defaults = ["--host", host, "--port", str(port), "--prefix", config.mqtt.prefix]
    else:
        defaults = ["--hub-callsign", config.radio.callsign]
    module = importlib.import_module(SIMULATORS[args.kind])
    result = module.main([*defaults, *args.sim_args])
    return int(result or 0)


def _setup_logging(config: Config) -> None:
    logging.basicConfig(
        level=config.hub.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Third-party libraries that narrate every state change at INFO.
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _up(args: argparse.Namespace, config: Config) -> int:
    from ops.serve import serve  # noqa: PLC0415 - keep `posko user add` light

    asyncio.run(serve(config, demo=args.demo))
    return 0


def _db_migrate(args: argparse.Namespace, config: Config) -> int:
    from db.migrate import migrate  # noqa: PLC0415
    from ops.database import open_pool  # noqa: PLC0415

    async def run() -> list[str]:
        async with open_pool(config, wait=args.wait) as pool, pool.acquire() as conn:
            return await migrate(conn)

    applied = asyncio.run(run())
    print("applied: " + ", ".join(applied) if applied else "database is up to date")  # noqa: T201
    return 0


def _user_add(args: argparse.Namespace, config: Config) -> int:
    from db.migrate import migrate  # noqa: PLC0415
    from ops.database import open_pool  # noqa: PLC0415
    from ops.users import add_user  # noqa: PLC0415

    password = _read_password()
    validate_new_user(
        username=args.name, password=password, role=args.role, display_name=args.display_name
    )

    async def run() -> None:
        async with open_pool(config, wait=args.wait) as pool:
            async with pool.acquire() as conn:
                await migrate(conn)
            await add_user(
                pool,
                username=args.name,
                password=password,
                role=args.role,
                actor="cli",
                display_name=args.display_name,
            )

    asyncio.run(run())
    print(f"user {args.name} added with role {args.role}")  # noqa: T201
    return 0


def _read_password() -> str:
    from_env = os.environ.get(PASSWORD_VARIABLE)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise ConfigError(f"no terminal to ask for a password; set {PASSWORD_VARIABLE}")
    first = getpass.getpass("password: ")
    second = getpass.getpass("again: ")
    if first != second:
        raise ConfigError("the two passwords differ")
    return first


if __name__ == "__main__":
    raise SystemExit(main())
