"""Day partitions of the rollup history: which to create ahead and which to drop.

Partitions cover one UTC day each and are named ``rollups_pYYYYMMDD``. Retention drops
whole partitions whose day ended more than ``retention_days`` ago; writes for such days
are skipped (their partition would be dropped anyway) and counted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

_NAME = re.compile(r"^rollups_p(\d{8})$")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    retention_days: int = 30
    create_ahead_days: int = 2


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    create: tuple[dt.date, ...]
    drop: tuple[dt.date, ...]


def day_of(epoch_s: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).date()


def partition_name(day: dt.date) -> str:
    return f"rollups_p{day:%Y%m%d}"


def parse_partition_name(name: str) -> dt.date | None:
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=dt.UTC).date()
    except ValueError:
        return None


def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def oldest_kept_day(now_s: float, policy: RetentionPolicy) -> dt.date:
    return day_of(now_s) - dt.timedelta(days=policy.retention_days)


def is_retained(epoch_s: float, now_s: float, policy: RetentionPolicy) -> bool:
    return day_of(epoch_s) >= oldest_kept_day(now_s, policy)


def plan(now_s: float, existing: Iterable[dt.date], policy: RetentionPolicy) -> PartitionPlan:
    """Create today's and the next ``create_ahead_days`` partitions; drop expired ones."""
    today = day_of(now_s)
    have = set(existing)
    wanted = [today + dt.timedelta(days=i) for i in range(policy.create_ahead_days + 1)]
    cutoff = oldest_kept_day(now_s, policy)
    return PartitionPlan(
        create=tuple(d for d in wanted if d not in have),
        drop=tuple(sorted(d for d in have if d < cutoff)),
    )
