"""Label matchers as Alertmanager writes them: ``name op value`` with op ``= != =~ !~``.

Regexes are anchored (the whole value must match) and run by RE2 in linear time, with
Go's syntax and error messages (``core/regex.py``). A missing label matches as the empty
string. Sets are written ``{a="x", b=~"y|z"}``. Names and values are checked as every
input is (``core/validation.py``): no NUL, no lone surrogate, bounded lengths.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alert_engine.core.regex import Predicate, RegexError, anchored
from alert_engine.core.validation import (
    MAX_MATCHER_NAME,
    MAX_MATCHER_VALUE,
    describe,
    text_problem,
)

# The matcher grammar itself is a fixed pattern (linear on any input); only users'
# values go to RE2.
_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_NAME_RE = re.compile(_NAME)
# No lazy ``(.*?)\s*$``: that backtracks quadratically over a long run of spaces; the
# value's trailing space is stripped afterwards instead.
_MATCHER = re.compile(rf'^\s*({_NAME}|"(?:[^"\\]|\\.)*")\s*(=~|!~|!=|=)\s*(.*)$', re.S)


class MatchType(enum.StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


class MatcherError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    type: MatchType
    value: str
    _pattern: Predicate | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            # Alertmanager rejects empty label names, even in UTF-8 mode.
            raise MatcherError(f"empty label name in {self.type}{self.value!r}")
        for what, text, limit in (
            ("label name", self.name, MAX_MATCHER_NAME),
            ("value", self.value, MAX_MATCHER_VALUE),
        ):
            problem = text_problem(text, limit)
            if problem is not None:
                raise MatcherError(f"matcher {what} {_shown(text)} {describe(problem, limit)}")
        if self.type in (MatchType.REGEX, MatchType.NOT_REGEX):
            try:
                pattern = anchored(self.value)
            except RegexError as exc:
                raise MatcherError(
                    f"invalid regex in {self.name}{self.type}{_shown(self.value)}: {exc}"
                ) from None
            object.__setattr__(self, "_pattern", pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.type is MatchType.EQUAL:
            return actual == self.value
        if self.type is MatchType.NOT_EQUAL:
            return actual != self.value
        assert self._pattern is not None
        found = self._pattern(actual)
        return found if self.type is MatchType.REGEX else not found

    @property
    def is_regex(self) -> bool:
        return self.type in (MatchType.REGEX, MatchType.NOT_REGEX)

    @property
    def is_equal(self) -> bool:
        return self.type in (MatchType.EQUAL, MatchType.REGEX)

    def __str__(self) -> str:
        # As Alertmanager: a name that is not a classic label name is printed quoted, so
        # the text parses back.
        name = (
            self.name
            if _NAME_RE.fullmatch(self.name)
            else json.dumps(self.name, ensure_ascii=False)
        )
        return f"{name}{self.type.value}{json.dumps(self.value, ensure_ascii=False)}"

    @classmethod
    def from_api(cls, name: str, value: str, is_regex: bool, is_equal: bool = True) -> Matcher:
        """The API v2 form: ``{name, value, isRegex, isEqual}``."""
        if is_regex:
            kind = MatchType.REGEX if is_equal else MatchType.NOT_REGEX
        else:
            kind = MatchType.EQUAL if is_equal else MatchType.NOT_EQUAL
        return cls(name, kind, value)


def _shown(text: str, limit: int = 64) -> str:
    shown = repr(text[:limit])
    return shown if len(text) <= limit else shown + "..."


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if not match:
        raise MatcherError(f'bad matcher {text!r} (want name="value", with = != =~ or !~)')
    name, op, raw = match.groups()
    raw = raw.rstrip()
    if name.startswith('"'):
        name = _unquote(name, text)
    value = _unquote(raw, text) if raw.startswith('"') else raw
    if not raw.startswith('"') and any(c in raw for c in '"{}'):
        raise MatcherError(f"bad matcher {text!r}: quote values that contain quotes or braces")
    return Matcher(name, MatchType(op), value)


def _unquote(raw: str, text: str) -> str:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise MatcherError(f"bad quoting in matcher {text!r}") from None
    if not isinstance(value, str):
        raise MatcherError(f"bad matcher {text!r}")
    return value


def parse_matchers(text: str) -> list[Matcher]:
    """``{a="x", b=~"y"}`` or ``a="x", b=~"y"`` → matchers; commas inside quotes are kept."""
    body = text.strip()
    if body.startswith("{"):
        if not body.endswith("}"):
            raise MatcherError(f"unbalanced braces in {text!r}")
        body = body[1:-1]
    return [parse_matcher(part) for part in _split(body) if part.strip()]


def _split(body: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in body:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise MatcherError(f"unterminated quote in {body!r}")
    parts.append("".join(current))
    return parts


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """Alertmanager's ``labels.Matchers.String()``: ``{a="x",b=~"y"}``."""
    return "{" + ",".join(str(m) for m in matchers) + "}"
