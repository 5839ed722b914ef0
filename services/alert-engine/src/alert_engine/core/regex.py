"""Untrusted regular expressions in linear time: RE2, Go's syntax, Alertmanager's anchoring.

Every regex a user can write (matchers in API filters, silences, routes, inhibit rules;
the ``receiver`` filter) is compiled here. Alertmanager compiles ``"^(?:" + value + ")$"``
with Go's ``regexp`` (RE2 syntax) and searches with it; so do we, with RE2, so matching
time is linear in the label's length whatever the pattern (``(a*)*b`` included) and the
accepted syntax is Go's: backreferences and lookarounds, which Python's ``re`` accepted,
are refused as Alertmanager refuses them, with Go's error messages
(``error parsing regexp: invalid escape sequence: `\\1```). Where RE2 is laxer than Go
(``\\C``, groups nested 999 deep), the difference is refused here.

As Prometheus' matchers (``(?s)``), ``.`` also matches a newline.

Compiling is bounded too: at most ``MAX_MATCHER_VALUE`` characters and ``MAX_MEMORY``
bytes of RE2 program (beyond it: Go's "expression too large"); compiled patterns and
refusals are remembered, so a repeated request costs nothing, and so are a pattern's
answers for short values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

import re2

from alert_engine.core.validation import MAX_MATCHER_VALUE, describe, text_problem

MAX_MEMORY = 1 << 20  # RE2 program and DFA cache per pattern
_GO_MAX_NESTING = 998  # Go refuses deeper groups inside its "^(?:...)$" (depth 1000)
_CACHE = 512  # compiled patterns (and refusals) remembered
_MEMO_SIZE = 256  # answers remembered per pattern ...
_MEMO_TEXT = 64  # ... for texts this short: at most ~20 MB in all

# RE2's error texts (re2.cc CodeText) → Go's regexp/syntax ErrorCode texts.
_GO_CODES = {
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": "invalid UTF-8",
    "invalid named capture group": "invalid named capture",
}

Predicate = Callable[[str], bool]


class RegexError(ValueError):
    """A pattern Alertmanager would refuse (or too large); the message is Go's."""


def _options() -> re2.Options:
    options = re2.Options()
    options.dot_nl = True
    options.never_capture = True  # only whether it matches is asked
    options.log_errors = False  # errors are raised, not written to stderr
    options.max_mem = MAX_MEMORY
    return options


_OPTIONS = _options()


def anchored(value: str) -> Predicate:
    """Whether a whole string matches ``value`` as an Alertmanager regex matcher does;
    raises RegexError with Go's message."""
    outcome = _compile(value)
    if isinstance(outcome, str):
        raise RegexError(outcome)
    return outcome


@lru_cache(maxsize=_CACHE)
def _compile(value: str) -> Predicate | str:
    """The predicate, or the error message (refusals are remembered too)."""
    problem = text_problem(value, MAX_MATCHER_VALUE)
    if problem is not None:
        return f"regex {describe(problem, MAX_MATCHER_VALUE)}"
    literal = _literal_alternatives(value)
    if literal is not None:
        return literal.__contains__
    expression = f"^(?:{value})$"
    try:
        pattern = re2.compile(expression, _OPTIONS)
    except re2.error as exc:
        return _go_message(exc, expression)
    go_only = _go_refuses(value, expression)
    if go_only is not None:
        return go_only
    search = pattern.search
    # Label values repeat (a job, a service): answers for short ones are remembered, per
    # pattern, bounded (the wrapper's search costs ~5-10 us, Python's re ~1 us).
    answers: dict[str, bool] = {}

    def matches(text: str) -> bool:
        found = answers.get(text)
        if found is None:
            # Bytes: the wrapper's str path maps offsets back to characters, which a
            # yes/no answer does not need (several times slower).
            found = search(text.encode("utf-8", "surrogatepass")) is not None
            if len(text) <= _MEMO_TEXT:
                if len(answers) >= _MEMO_SIZE:
                    answers.clear()
                answers[text] = found
        return found

    return matches


# Characters with a meaning in RE2 syntax; a value without any is a literal.
_META = frozenset("\\.+*?()|[]{}^$")


def _literal_alternatives(value: str) -> frozenset[str] | None:
    """``prod`` or ``api|web|db``: the set of strings it matches exactly, so the common
    matchers are a set lookup rather than a regex run."""
    parts = value.split("|")
    if any(char in _META for part in parts for char in part):
        return None
    return frozenset(parts)


def _go_message(exc: re2.error, expression: str) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if text.startswith("pattern too large"):
        return f"error parsing regexp: expression too large: `{expression}`"
    for code in sorted(_GO_CODES, key=len, reverse=True):
        if text.startswith(code + ": "):
            return f"error parsing regexp: {_GO_CODES[code]}: `{text[len(code) + 2 :]}`"
        if text == code:
            return f"error parsing regexp: {_GO_CODES[code]}: `{expression}`"
    return f"error parsing regexp: {text}: `{expression}`"


def _go_refuses(value: str, expression: str) -> str | None:
    """What Go's parser refuses in a pattern RE2 accepted: ``\\C`` (any byte) and groups
    nested too deeply. ``value`` is valid RE2, so a light scan suffices."""
    depth = 0
    for piece in _tokens(value):
        if piece == "\\C":
            return "error parsing regexp: invalid escape sequence: `\\C`"
        if piece == "(":
            depth += 1
            if depth > _GO_MAX_NESTING:
                return f"error parsing regexp: expression nests too deeply: `{expression}`"
        elif piece == ")":
            depth -= 1
    return None


def _tokens(value: str) -> Iterator[str]:
    """The pattern's tokens outside character classes and ``\\Q...\\E``: an escape is one
    token (``\\C``), anything else one character."""
    i, n = 0, len(value)
    while i < n:
        char = value[i]
        if value.startswith("\\Q", i):  # literal text up to \E
            end = value.find("\\E", i + 2)
            i = n if end < 0 else end + 2
        elif char == "\\":
            yield value[i : i + 2]
            i += 2
        elif char == "[":
            i = _class_end(value, i)
        else:
            yield char
            i += 1


def _class_end(value: str, start: int) -> int:
    """The index after the character class opening at ``start``."""
    i = start + 1
    if value.startswith("^", i):
        i += 1
    if value.startswith("]", i):  # a leading ] is a literal
        i += 1
    while i < len(value):
        if value.startswith("[:", i):  # [:alpha:]
            end = value.find(":]", i + 2)
            i = len(value) if end < 0 else end + 2
        elif value[i] == "\\":
            i += 2
        elif value[i] == "]":
            return i + 1
        else:
            i += 1
    return i
