"""A health-check run's results, its verdict and how it is shown (pure: no I/O)."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass


class Status(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str  # the kind: service, broker, database, redis, consumer-lag, dlq
    target: str  # what was checked: a service's name, a group, an address
    status: Status
    detail: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


def healthy(results: Sequence[CheckResult]) -> bool:
    return bool(results) and not any(r.failed for r in results)


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 when every check passed, 1 otherwise (an empty run did not check anything)."""
    return 0 if healthy(results) else 1


def as_json(results: Sequence[CheckResult]) -> str:
    return json.dumps(
        {
            "healthy": healthy(results),
            "checks": [
                {**asdict(r), "status": r.status.value, "seconds": round(r.seconds, 3)}
                for r in results
            ],
        },
        indent=2,
    )


HEADERS = ("check", "target", "status", "ms", "detail")


def as_table(results: Sequence[CheckResult]) -> str:
    rows = [
        (r.check, r.target, r.status.value.upper(), f"{r.seconds * 1000:.0f}", r.detail)
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(HEADERS)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in (HEADERS, tuple("-" * w for w in widths), *rows)
    ]
    failed = sum(r.failed for r in results)
    verdict = "healthy" if healthy(results) else f"UNHEALTHY: {failed} of {len(results)} failed"
    return "\n".join([*lines, "", verdict])
