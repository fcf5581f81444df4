"""The roles a route may admit: the public, or a set of signed-in roles."""

from __future__ import annotations

from typing import Final, Literal

from ops.users import Role

Public = Literal["public"]
PUBLIC: Final[Public] = "public"
ANY_ROLE: Final = frozenset(Role)
SUPERVISOR_ONLY: Final = frozenset({Role.SUPERVISOR})
CASE_WORKERS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
WALL_OPERATORS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
DISPATCHERS: Final = frozenset({Role.OPERATOR, Role.SUPERVISOR})
DEVICE_KEEPERS: Final = frozenset({Role.TECHNICIAN, Role.SUPERVISOR})

Access = frozenset[Role] | Public
