"""The shop's load generator: a few requests a second to its pages, and in cycles an
incident during which a share of the requests fail (``boom/``), long enough for the demo's
error-rate rule to fire and then resolve. Runs until stopped."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

# One cycle: healthy, then an incident (about one request in three fails), healthy again.
HEALTHY_S = 20.0
INCIDENT_S = 25.0
CYCLE_S = HEALTHY_S + INCIDENT_S + HEALTHY_S
CUSTOMERS = 2000  # as the migration creates them
PAGES = CUSTOMERS // 20


def in_incident(elapsed_s: float) -> bool:
    phase = elapsed_s % CYCLE_S
    return HEALTHY_S <= phase < HEALTHY_S + INCIDENT_S


def paths(tick: int, elapsed_s: float, rng: random.Random) -> list[str]:
    """The requests of one tick."""
    chosen = [
        f"/customers/?page={rng.randint(1, PAGES)}",
        f"/customers/{rng.randint(1, CUSTOMERS)}/orders/",
    ]
    if tick % 4 == 0:
        chosen.append(f"/checkout/{rng.randint(1, 99)}/")
    if in_incident(elapsed_s):
        chosen.append("/boom/")
    return chosen


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0  # an answer of 5xx: the failures the incident asks for
    unreachable: int = 0


def get(url: str, timeout_s: float = 10.0) -> int:
    """The status of a GET; an HTTP error status is an answer, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


class Stop:
    """Set by a signal handler: a plain flag, as a handler that took a lock (an Event's
    ``set``) could wait forever on one the interrupted code holds."""

    requested = False


def run(
    base_url: str,
    stop: Stop,
    *,
    interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    seed: int = 7,
) -> Tally:
    rng = random.Random(seed)  # noqa: S311 - demo traffic, not security
    started = clock()
    tally = Tally()
    tick = 0
    while not stop.requested:
        tick += 1
        for path in paths(tick, clock() - started, rng):
            try:
                status = get(base_url.rstrip("/") + path)
            except OSError:  # the shop not up yet, or restarting: try again next tick
                tally.unreachable += 1
                continue
            if status >= 500:
                tally.failed += 1
            else:
                tally.ok += 1
        sleep(interval_s)  # the pace of the load
    return tally
