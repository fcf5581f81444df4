"""The layering of docs/architecture.md is the code's: import-linter's contracts in pyproject.toml
hold on the tree, name every package, and `make lint` fails when a module crosses a layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
ROOT_PACKAGES = ("ops", "devices", "radio", "videowall", "db")
LINT_TIMEOUT = 60


def importlinter_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        config: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    return config


def contract(contract_id: str) -> dict[str, Any]:
    (found,) = [c for c in importlinter_config()["contracts"] if c.get("id") == contract_id]
    return found


def ops_children() -> set[str]:
    """Every module and package directly under ``ops``, as import-linter names them."""
    children = {f"ops.{path.stem}" for path in (ROOT / "ops").glob("*.py")}
    children |= {f"ops.{path.parent.name}" for path in (ROOT / "ops").glob("*/__init__.py")}
    return children - {"ops.__init__"}


def layer_names() -> set[str]:
    names: set[str] = set()
    for layer in contract("layers")["layers"]:
        for name in layer.replace(":", "|").split("|"):
            names.add(name.strip().strip("()"))
    return names


def only_python(directory: str, names: list[str]) -> set[str]:
    """What ``shutil.copytree`` leaves out of a source tree: caches and every non-Python file."""
    return {
        name
        for name in names
        if name == "__pycache__"
        or (not name.endswith(".py") and not Path(directory, name).is_dir())
    }


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` as ``make lint`` runs it, on the tree under ``cwd``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=LINT_TIMEOUT,
        check=False,
    )


def test_make_lint_checks_the_contracts() -> None:
    recipe = (ROOT / "Makefile").read_text().split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/lint-imports" in [line.strip() for line in recipe.splitlines()[1:]]


def test_every_package_has_its_place_in_the_layers() -> None:
    """A new package cannot slip past the layers by not being named in them."""
    missing = (ops_children() | set(ROOT_PACKAGES) - {"ops"}) - layer_names()
    assert not missing, f"name these in the layers contract of pyproject.toml: {sorted(missing)}"


def test_adapters_are_forbidden_every_package_but_ops_core() -> None:
    forbidden = set(contract("adapters")["forbidden_modules"])
    assert forbidden == (ops_children() - {"ops.core"}) | {"db", "videowall"}


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages' Python sources and pyproject.toml, copied where a test may spoil them."""
    root = tmp_path_factory.mktemp("tree")
    for package in ROOT_PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=only_python)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        pytest.param(
            "ops/cases/violation.py",
            "from __future__ import annotations\n\nfrom typing import TYPE_CHECKING\n\n"
            "if TYPE_CHECKING:\n    from ops.app import Hub\n",
            "ops.cases.violation -> ops.app",
            id="a domain names the composition root, if only for a type",
        ),
        pytest.param(
            "ops/units/violation.py",
            "from ops.dispatch.events import ORDER_CHANGED\n",
            "ops.units.violation -> ops.dispatch.events",
            id="units import dispatch, which imports units",
        ),
        pytest.param(
            "devices/violation.py",
            "from db import units\n",
            "devices.violation -> db.units",
            id="an adapter touches SQL",
        ),
        pytest.param(
            "ops/core/violation.py",
            "import ops.users\n",
            "ops.core.violation -> ops.users",
            id="ops.core imports a domain",
        ),
    ],
)
def test_lint_fails_on_a_layer_violation(
    tree_copy: Path, module: str, source: str, broken: str
) -> None:
    path = tree_copy / module
    path.write_text(source)
    try:
        result = lint_imports(tree_copy)
    finally:
        path.unlink()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert broken in result.stdout
