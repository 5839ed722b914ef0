"""The silence form: matchers as text, a duration, an author and a comment, turned into
the alert-engine's own request type (``PostableSilence``), and the preview of what a
silence would mute among the alerts the console holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from alert_engine.api.shapes import ApiMatcher, PostableSilence
from alert_engine.core.matchers import Matcher, MatcherError, matches_all, parse_matchers
from console.core.shapes import Alert, AlertGroup, Silence
from opsmesh.durations import format_duration, parse_duration

# A preview lists this many of the alerts it would mute, and counts them all.
MAX_PREVIEW = 50


class SilenceFormError(ValueError):
    """What the form holds that cannot be a silence; shown next to the form."""


@dataclass(frozen=True, slots=True)
class SilenceForm:
    matchers: str
    duration: str
    created_by: str
    comment: str
    id: str = ""

    @classmethod
    def blank(cls, author: str = "") -> SilenceForm:
        return cls(matchers="", duration="2h", created_by=author, comment="")

    @classmethod
    def for_alert(cls, labels: Mapping[str, str], author: str = "") -> SilenceForm:
        """Every label of the alert, as Alertmanager's UI prefills a new silence."""
        text = ", ".join(str(Matcher.from_api(k, v, False)) for k, v in sorted(labels.items()))
        return cls(matchers=text, duration="2h", created_by=author, comment="")

    @classmethod
    def for_silence(cls, silence: Silence, now: float) -> SilenceForm:
        """An existing silence to edit: its matchers, and what is left of it (or 2h)."""
        left = silence.ends_at.timestamp() - now
        return cls(
            matchers=", ".join(
                str(Matcher.from_api(m.name, m.value, m.is_regex, m.is_equal))
                for m in silence.matchers
            ),
            duration=format_duration(round(left)) if left >= 1 else "2h",
            created_by=silence.created_by,
            comment=silence.comment,
            id=silence.id,
        )

    def parsed_matchers(self) -> list[Matcher]:
        if not self.matchers.strip():
            raise SilenceFormError("a silence needs at least one matcher")
        try:
            matchers = parse_matchers(self.matchers)
        except MatcherError as exc:
            raise SilenceFormError(str(exc)) from None
        if not matchers:
            raise SilenceFormError("a silence needs at least one matcher")
        if all(m.matches({}) for m in matchers):
            # Alertmanager refuses these too: such a silence would mute every alert.
            raise SilenceFormError("the matchers would match every alert (even one without labels)")
        return matchers

    def to_postable(self, now: float) -> PostableSilence:
        matchers = self.parsed_matchers()
        try:
            seconds = parse_duration(self.duration.strip())
        except ValueError as exc:
            raise SilenceFormError(f"duration: {exc}") from None
        if seconds <= 0:
            raise SilenceFormError("duration must be positive")
        if not self.created_by.strip():
            raise SilenceFormError("say who creates the silence (author)")
        if not self.comment.strip():
            raise SilenceFormError("say why (comment)")
        starts = datetime.fromtimestamp(now, UTC)
        return PostableSilence(
            matchers=[ApiMatcher(m.name, m.value, m.is_regex, m.is_equal) for m in matchers],
            starts_at=starts,
            ends_at=datetime.fromtimestamp(now + seconds, UTC),
            created_by=self.created_by.strip(),
            comment=self.comment.strip(),
            id=self.id or None,
        )


@dataclass(frozen=True, slots=True)
class Preview:
    alerts: tuple[Alert, ...]  # at most MAX_PREVIEW
    count: int


def preview(groups: Sequence[AlertGroup], matchers: Sequence[Matcher]) -> Preview:
    """The distinct alerts the matchers select (an alert in two groups counts once)."""
    seen: dict[str, Alert] = {}
    for group in groups:
        for alert in group.alerts:
            if alert.fingerprint not in seen and matches_all(matchers, alert.labels):
                seen[alert.fingerprint] = alert
    ordered = sorted(seen.values(), key=lambda a: (a.labels.get("alertname", ""), a.fingerprint))
    return Preview(tuple(ordered[:MAX_PREVIEW]), len(ordered))


def matcher_text(silence: Silence) -> str:
    return ", ".join(
        str(Matcher.from_api(m.name, m.value, m.is_regex, m.is_equal)) for m in silence.matchers
    )
