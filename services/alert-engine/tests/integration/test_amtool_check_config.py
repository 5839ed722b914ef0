"""``amtool check-config`` (Debian's Alertmanager 0.25) and ``opsmesh check-config`` agree
on which Alertmanager configuration files are valid.

The corpus is tests/fixtures/alertmanager-configs/: ``valid/`` and ``invalid/`` must get
the same verdict from both. The documented exceptions are classes of their own, each
asserted explicitly: ``unimplemented/`` (valid for amtool, refused by opsmesh naming the
receiver and the integration), ``newer/`` (fields of later Alertmanager releases that
amtool 0.25 does not know) and ``extensions/`` (opsmesh's own fields,
docs/alertmanager-compat.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "alertmanager-configs"
AMTOOL = shutil.which("amtool")
OPSMESH = [str(Path(sys.executable).parent / "opsmesh")]


def _files(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yml"))


def _amtool(path: Path) -> subprocess.CompletedProcess[str]:
    assert AMTOOL, "amtool (Debian's prometheus-alertmanager) is required"
    return subprocess.run(
        [AMTOOL, "check-config", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _opsmesh(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OPSMESH, "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_corpus_covers_each_class() -> None:
    assert len(_files("valid")) >= 25
    assert len(_files("invalid")) >= 50
    assert len(_files("unimplemented")) >= 7


@pytest.mark.parametrize("path", _files("valid"), ids=lambda p: p.stem)
def test_valid_for_both(path: Path) -> None:
    am, om = _amtool(path), _opsmesh(path)
    assert am.returncode == 0, am.stdout + am.stderr
    assert om.returncode == 0, om.stdout + om.stderr


@pytest.mark.parametrize("path", _files("invalid"), ids=lambda p: p.stem)
def test_invalid_for_both(path: Path) -> None:
    am, om = _amtool(path), _opsmesh(path)
    assert am.returncode != 0, am.stdout
    assert om.returncode == 1, om.stdout + om.stderr
    assert "FAILED" in om.stderr


@pytest.mark.parametrize("path", _files("unimplemented"), ids=lambda p: p.stem)
def test_unimplemented_integrations_are_the_documented_exception(path: Path) -> None:
    am, om = _amtool(path), _opsmesh(path)
    assert am.returncode == 0, am.stdout + am.stderr
    assert om.returncode == 1
    assert "receiver 'r'" in om.stderr
    assert "does not implement" in om.stderr
    assert "docs/alertmanager-compat.md" in om.stderr


@pytest.mark.parametrize(
    "path", _files("newer") + _files("extensions"), ids=lambda p: f"{p.parent.name}-{p.stem}"
)
def test_newer_fields_and_opsmesh_extensions_are_accepted_by_opsmesh_only(path: Path) -> None:
    am, om = _amtool(path), _opsmesh(path)
    assert am.returncode != 0, am.stdout
    assert "not found in type" in am.stdout + am.stderr or "cannot unmarshal" in am.stdout
    assert om.returncode == 0, om.stdout + om.stderr
