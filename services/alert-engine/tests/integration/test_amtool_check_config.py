"""``amtool check-config`` (Debian's Alertmanager 0.25) and ``opsmesh check-config`` agree
on which Alertmanager configuration files are valid.

The corpus is tests/fixtures/alertmanager-configs/: ``valid/`` and ``invalid/`` must get
the same verdict from both. The documented exceptions are classes of their own, each
asserted explicitly: ``unimplemented/`` (valid for amtool, refused by opsmesh naming the
receiver and the integration), ``newer/`` (fields of later Alertmanager releases that
amtool 0.25 does not know) and ``extensions/`` (opsmesh's own fields,
docs/alertmanager-compat.md).

amtool checks each corpus directory in one run (it takes several files and reports each);
opsmesh's side is the loader ``opsmesh check-config`` calls, in process, and one run of
the command itself over the whole corpus shows it reports the same verdicts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from alert_engine.cli import check_config
from alert_engine.core.amconfig import ConfigError, parse_config

CORPUS = Path(__file__).resolve().parents[4] / "tests" / "fixtures" / "alertmanager-configs"
KINDS = ("valid", "invalid", "unimplemented", "newer", "extensions")
AMTOOL = shutil.which("amtool")
OPSMESH = [str(Path(sys.executable).parent / "opsmesh")]


def _files(kind: str) -> list[Path]:
    return sorted((CORPUS / kind).glob("*.yml"))


@dataclass(frozen=True)
class Verdict:
    valid: bool
    output: str


# amtool prints "Checking '<file>'  SUCCESS" (then what it found) or
# "Checking '<file>'  FAILED: <error>" (the error may span lines) for each file.
_CHECKING = re.compile(r"^Checking '(?P<name>[^']+)'  (?P<verdict>SUCCESS|FAILED)", re.MULTILINE)


def _amtool_directory(kind: str) -> dict[Path, Verdict]:
    """One amtool run over a corpus directory, from inside it (``*_file`` paths are
    relative to it), split into each file's verdict."""
    assert AMTOOL, "amtool (Debian's prometheus-alertmanager) is required"
    files = _files(kind)
    run = subprocess.run(
        [AMTOOL, "check-config", *(path.name for path in files)],
        cwd=CORPUS / kind,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = run.stdout + run.stderr
    found = list(_CHECKING.finditer(output))
    assert [match["name"] for match in found] == [path.name for path in files], output
    verdicts: dict[Path, Verdict] = {}
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(output)
        verdicts[CORPUS / kind / match["name"]] = Verdict(
            match["verdict"] == "SUCCESS", output[match.start() : end]
        )
    # The exit code is the summary of the per-file verdicts.
    assert (run.returncode == 0) == all(v.valid for v in verdicts.values()), output
    return verdicts


@pytest.fixture(scope="module")
def amtool() -> dict[Path, Verdict]:
    verdicts: dict[Path, Verdict] = {}
    for kind in KINDS:
        verdicts.update(_amtool_directory(kind))
    return verdicts


def _opsmesh(path: Path) -> Verdict:
    """What ``opsmesh check-config`` decides, without starting a process per file: the
    same loader, called as the command calls it. Only ConfigError is a verdict; any other
    exception is a bug and fails the test."""
    try:
        parse_config(path.read_text("utf-8"), path.resolve().parent)
    except ConfigError as exc:
        return Verdict(valid=False, output=str(exc))
    return Verdict(valid=True, output="")


def test_the_corpus_covers_each_class() -> None:
    assert len(_files("valid")) >= 25
    assert len(_files("invalid")) >= 50
    assert len(_files("unimplemented")) >= 7


@pytest.mark.parametrize("path", _files("valid"), ids=lambda p: p.stem)
def test_valid_for_both(amtool: dict[Path, Verdict], path: Path) -> None:
    am, om = amtool[path], _opsmesh(path)
    assert am.valid, am.output
    assert om.valid, om.output


@pytest.mark.parametrize("path", _files("invalid"), ids=lambda p: p.stem)
def test_invalid_for_both(amtool: dict[Path, Verdict], path: Path) -> None:
    am, om = amtool[path], _opsmesh(path)
    assert not am.valid, am.output
    assert not om.valid
    assert om.output


@pytest.mark.parametrize("path", _files("unimplemented"), ids=lambda p: p.stem)
def test_unimplemented_integrations_are_the_documented_exception(
    amtool: dict[Path, Verdict], path: Path
) -> None:
    am, om = amtool[path], _opsmesh(path)
    assert am.valid, am.output
    assert not om.valid
    assert "receiver 'r'" in om.output
    assert "does not implement" in om.output
    assert "docs/alertmanager-compat.md" in om.output


@pytest.mark.parametrize(
    "path", _files("newer") + _files("extensions"), ids=lambda p: f"{p.parent.name}-{p.stem}"
)
def test_newer_fields_and_opsmesh_extensions_are_accepted_by_opsmesh_only(
    amtool: dict[Path, Verdict], path: Path
) -> None:
    am, om = amtool[path], _opsmesh(path)
    assert not am.valid, am.output
    assert "not found in type" in am.output or "cannot unmarshal" in am.output
    assert om.valid, om.output


def test_the_command_reports_each_file_as_the_loader_decides() -> None:
    files = [path for kind in KINDS for path in _files(kind)]
    run = subprocess.run(
        [*OPSMESH, "check-config", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # the corpus has invalid files
    succeeded = {
        line.split(": SUCCESS, ")[0] for line in run.stdout.splitlines() if ": SUCCESS, " in line
    }
    failed = {
        line.split(": FAILED: ")[0] for line in run.stderr.splitlines() if ": FAILED: " in line
    }
    assert succeeded | failed == set(map(str, files))
    for path in files:
        assert (str(path) in succeeded) == _opsmesh(path).valid, path


def test_the_command_exits_0_when_every_file_is_valid() -> None:
    result = CliRunner().invoke(check_config, [str(path) for path in _files("valid")])
    assert result.exit_code == 0, result.output
    assert result.output.count(": SUCCESS, ") == len(_files("valid"))
