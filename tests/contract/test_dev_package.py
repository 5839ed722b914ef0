"""Runtime code never needs the development package, so a production install can leave it
out: no service and not the shared ``opsmesh`` library import ``opsmesh_dev`` (nor name it
as a module to run), and none of their pyprojects depends on it. numpy is alert-engine's
alone (its batch label fingerprints), so no other runtime package imports it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_MEMBERS = [ROOT / "shared", *sorted((ROOT / "services").glob("*/"))]
DEV_PACKAGE = "opsmesh_dev"
DEV_DISTRIBUTION = "opsmesh-dev"


def top_level_imports(path: Path) -> set[str]:
    """Packages imported, and those named as a string to import or run (``python -m x``,
    ``importlib.import_module("x")``, ``resources.files("x.y")``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value.split(".")[0])
    return names


def sources(member: Path) -> list[Path]:
    files = sorted((member / "src").rglob("*.py"))
    assert files, f"{member} has no sources under src/"
    return files


@pytest.mark.parametrize("member", RUNTIME_MEMBERS, ids=lambda p: p.name)
def test_runtime_sources_never_import_the_dev_package(member: Path) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources(member)
        if DEV_PACKAGE in top_level_imports(path)
    ]
    assert offenders == [], f"runtime code reaching the development package: {offenders}"


@pytest.mark.parametrize("member", RUNTIME_MEMBERS, ids=lambda p: p.name)
def test_runtime_packages_do_not_depend_on_the_dev_package(member: Path) -> None:
    project = tomllib.loads((member / "pyproject.toml").read_text())
    dependencies = [
        *project["project"].get("dependencies", []),
        *(d for group in project.get("dependency-groups", {}).values() for d in group),
    ]
    assert not [d for d in dependencies if d.startswith(DEV_DISTRIBUTION)], member.name


def test_production_install_leaves_the_dev_package_out() -> None:
    """The root installs every runtime member; the development package only in its dev
    group, which `uv sync --no-dev` (the Dockerfile's runtime image) skips."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert DEV_DISTRIBUTION not in root["project"]["dependencies"]
    assert DEV_DISTRIBUTION in root["dependency-groups"]["dev"]


@pytest.mark.parametrize("member", RUNTIME_MEMBERS, ids=lambda p: p.name)
def test_only_alert_engine_imports_numpy(member: Path) -> None:
    importers = [
        str(path.relative_to(ROOT))
        for path in sources(member)
        if "numpy" in top_level_imports(path)
    ]
    dependencies = tomllib.loads((member / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = any(d.startswith("numpy") for d in dependencies)
    if member.name == "alert-engine":
        assert importers, "alert-engine's batch fingerprints use numpy"
        assert declared, "alert-engine imports numpy without declaring it"
    else:
        assert importers == [], f"numpy is alert-engine's dependency only: {importers}"
        assert not declared, f"{member.name} declares numpy but does not import it"
