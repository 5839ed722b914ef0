"""The simulated time the pure cores are tested in: an ``opsmesh.clock.Clock`` that moves
only when a test moves it."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        self._mono += seconds

    def set(self, epoch_seconds: float) -> None:
        self.advance(epoch_seconds - self._now)
