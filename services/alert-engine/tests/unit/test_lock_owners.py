"""Only the façade takes the engine's locks (docs/architecture.md, "Locks
(alert-engine)"): no other module of alert-engine enters ``_flushing`` or the engine
lock, so the order they are taken in is decided in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import alert_engine

PACKAGE = Path(alert_engine.__file__).parent
FACADE = PACKAGE / "pipeline" / "state" / "facade.py"
ENGINE_LOCKS = {"lock", "_lock", "flushing", "_flushing"}


def lock_entries(path: Path) -> list[str]:
    """Every ``async with <x>.<lock>`` (and ``acquire``) of an engine lock in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.AsyncWith):
            targets = [item.context_expr for item in node.items]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "acquire"
        ):
            targets = [node.func.value]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in ENGINE_LOCKS:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {target.attr}")
    return found


def test_only_the_facade_takes_the_engine_locks() -> None:
    outside = [
        entry
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != FACADE
        for entry in lock_entries(path)
    ]
    assert outside == []


def test_the_facade_takes_them() -> None:
    """The check above would pass over code that no longer names its locks this way."""
    taken = {entry.rsplit(" ", 1)[1] for entry in lock_entries(FACADE)}
    assert taken == {"_lock", "_flushing"}
