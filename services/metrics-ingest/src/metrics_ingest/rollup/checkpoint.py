"""What a partition's committed offset carries, so a restart resumes exactly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A partition's watermark at a commit, and the offset everything before which had
    been applied. Committed as Kafka commit metadata with the offset."""

    watermark: float
    applied_to: int

    def encode(self) -> str:
        return f"v1;wm={self.watermark!r};to={self.applied_to}"

    @staticmethod
    def decode(text: str) -> Checkpoint | None:
        """``None`` for empty or foreign metadata: the partition then starts fresh."""
        parts = dict(p.split("=", 1) for p in text.split(";")[1:] if "=" in p)
        if not text.startswith("v1;") or "wm" not in parts or "to" not in parts:
            return None
        try:
            return Checkpoint(float(parts["wm"]), int(parts["to"]))
        except ValueError:
            return None
