"""A service's test doubles live in its ``<package>.testing`` (the shared ones in
``opsmesh_dev.testing``, held apart by ``tests/contract/test_dev_package.py``); no other
runtime module imports them, so a running service never uses a fake by accident."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "shared" / "src",
    ROOT / "sdk" / "python" / "src",
    *sorted((ROOT / "services").glob("*/src")),
]


def _is_testing(module: str) -> bool:
    parts = module.split(".")
    return len(parts) >= 2 and parts[1] == "testing"


def _runtime_modules() -> list[Path]:
    found = []
    for source in SOURCES:
        for path in source.rglob("*.py"):
            relative = path.relative_to(source).with_suffix("")
            if not _is_testing(".".join(relative.parts)):
                found.append(path)
    return found


def test_no_runtime_module_imports_a_test_double() -> None:
    modules = _runtime_modules()
    assert len(modules) > 100  # the scan found the code
    offenders = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if _is_testing(n)]
    assert offenders == []
