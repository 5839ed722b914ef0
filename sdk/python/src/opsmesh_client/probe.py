"""What a health check returns, and how a check of a dependency runs its probe: on a
thread of its own, waited for at most its timeout, with its latency measured and its
failure's reason stripped of credentials."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    status: str  # pass, warn or fail
    output: str | None = None
    observed_value: float | str | None = None


Check = Callable[[], Result]


class CheckFailed(Exception):
    """A probe's classified failure; its message is the check's reason as it stands."""


_URL_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_SECRET_PAIRS = re.compile(
    r"(?i)\b(password|passwd|pwd|secret[\w-]*|token|access[_-]?key[\w-]*)(\s*[=:]\s*)"
    r"('[^']*'|\"[^\"]*\"|[^\s,;&]+)"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the password of a URL, ``password=...``-like pairs, and each of
    ``secrets``; on one line, at most 500 characters."""
    text = _SECRET_PAIRS.sub(r"\1\2***", _URL_CREDENTIALS.sub(r"\1***@", text))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:500]


class Bounded:
    """A probe run on a thread of its own, waited for ``timeout_s``. A probe still waiting
    when the next round comes is not doubled (that round fails at once): a dead dependency
    holds one thread, not one per round."""

    def __init__(
        self,
        what: str,
        probe: Callable[[], object],
        *,
        timeout_s: float,
        warn_above_ms: float | None,
        secrets: Sequence[str] = (),
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._what, self._probe, self._timeout_s = what, probe, timeout_s
        self._warn_above_ms, self._secrets = warn_above_ms, [s for s in secrets if s]
        self._lock = threading.Lock()
        self._waiting: threading.Thread | None = None

    def __call__(self) -> Result:
        outcome: list[Result] = []
        with self._lock:
            if self._waiting is not None and self._waiting.is_alive():
                return Result("fail", f"{self._what}: still no answer to an earlier probe")
            thread = threading.Thread(
                target=self._run, args=(outcome,), name=f"opsmesh-health-{self._what}"
            )
            thread.daemon = True
            self._waiting = thread
        thread.start()
        thread.join(self._timeout_s)
        if thread.is_alive() or not outcome:
            return Result("fail", f"{self._what}: no answer within {self._timeout_s:g} s")
        return outcome[0]

    def _run(self, outcome: list[Result]) -> None:
        started = time.perf_counter()
        try:
            self._probe()
        except CheckFailed as exc:
            outcome.append(Result("fail", redact(str(exc), self._secrets)))
            return
        except Exception as exc:  # the dependency's failure is the check's result
            reason = f"{self._what}: {type(exc).__name__}: {exc}"
            outcome.append(Result("fail", redact(reason, self._secrets)))
            return
        ms = round((time.perf_counter() - started) * 1000.0, 3)
        slow = self._warn_above_ms is not None and ms > self._warn_above_ms
        note = f" (above {self._warn_above_ms:g} ms)" if slow else ""
        outcome.append(Result("warn" if slow else "pass", f"{self._what}: {ms:g} ms{note}", ms))
