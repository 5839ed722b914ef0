"""The fault suite's table: one row per case, kept for the end of the run.

pytest captures output (CI does not run with ``-s``), so the table is written to a file
under the run's temporary directory and printed by ``pytest_terminal_summary``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.faults.accounting import DuplicateKind, Tally


@dataclass(frozen=True, slots=True)
class CaseRow:
    case: str
    loads: str
    tally: Tally
    resent_bound: int
    # Per affected service: its restart (or the part's start) to its first ready answer.
    ready: dict[str, float]
    ingest_failures: str
    lag: str  # uncommitted records left when the case ended ("0" when drained)
    log_lines: int  # what the five services logged during the case
    crashes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return (
            not self.tally.lost
            and self.tally.count(DuplicateKind.RENOTIFIED) == 0
            and self.tally.count(DuplicateKind.RESENT) <= self.resent_bound
            and not self.crashes
            and self.lag == "0"
        )


HEADER = (
    "case",
    "load (groups)",
    "expected",
    "lost",
    "dup resent (bound)",
    "dup renotified",
    "ready s (slowest)",
    "ingest retries",
    "lag",
    "log lines",
    "result",
)


@dataclass
class FaultReport:
    path: Path
    rows: list[CaseRow] = field(default_factory=list)

    def add(self, row: CaseRow) -> None:
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.render() + "\n")

    def render(self) -> str:
        lines = [
            "| " + " | ".join(HEADER) + " |",
            "|" + "---|" * len(HEADER),
        ]
        for row in self.rows:
            t = row.tally
            cells = (
                row.case,
                row.loads,
                str(t.expected),
                str(len(t.lost)),
                f"{t.count(DuplicateKind.RESENT)} ({row.resent_bound})",
                str(t.count(DuplicateKind.RENOTIFIED)),
                _slowest(row.ready),
                row.ingest_failures,
                row.lag,
                str(row.log_lines),
                "ok" if row.passed else "FAILED",
            )
            lines.append("| " + " | ".join(cells) + " |")
        details = []
        for row in self.rows:
            t = row.tally
            details += [f"- {row.case}: lost {f} {s}" for f, s in t.lost]
            details += [f"- {row.case}: duplicate {d.describe()}" for d in t.duplicates]
            details += [f"- {row.case}: crashed {c}" for c in row.crashes]
            details += [f"- {row.case}: {n}" for n in row.notes]
            if len(row.ready) > 1:
                times = ", ".join(f"{name} {s:.1f}" for name, s in sorted(row.ready.items()))
                details.append(f"- {row.case}: seconds to ready: {times}")
        if details:
            lines += ["", *details]
        return "\n".join(lines)


def _slowest(ready: dict[str, float]) -> str:
    if not ready:
        return "-"
    name, seconds = max(ready.items(), key=lambda item: item[1])
    return f"{seconds:.1f} ({name})"


REPORT_KEY = pytest.StashKey[FaultReport]()
