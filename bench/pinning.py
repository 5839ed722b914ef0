"""Pin processes to cores, to measure what a design does when the broker and the database
do not share cores with the services (``--pin`` of the alert-path benchmark).

Linux sets affinity per thread: a process is pinned by pinning each of its threads; the
threads and processes it starts afterwards inherit it (PostgreSQL's backends fork from
the postmaster, the JVM's threads from its threads).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SERVICES_CPUS = frozenset({0})
INFRASTRUCTURE_CPUS = frozenset({1})


class CannotPin(RuntimeError):
    pass


def check_cores() -> None:
    available = os.sched_getaffinity(0)
    if not available >= SERVICES_CPUS | INFRASTRUCTURE_CPUS:
        raise CannotPin(f"--pin needs cores 0 and 1; this process may use {sorted(available)}")


def pin_process(pid: int, cpus: Iterable[int]) -> int:
    """Pin every thread of ``pid``; returns how many were pinned."""
    pinned = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), set(cpus))
        except ProcessLookupError:
            continue  # the thread ended meanwhile
        pinned += 1
    return pinned


def pin_this_thread(cpus: Iterable[int]) -> None:
    """The calling thread; what it starts afterwards (processes, threads) inherits it."""
    os.sched_setaffinity(0, set(cpus))
