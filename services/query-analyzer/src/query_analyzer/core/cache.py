"""A fingerprint cache keyed by a cheap pre-normalisation of the SQL text.

pglast costs 5-8 us per statement, about the whole per-event budget at 80k events/s.
Most slow queries repeat a few templates with different literals, so the cache key is
the text with quoted strings replaced by ``''``, standalone numbers by ``0`` and comments
by a space (C-level regex passes). Every change the key makes is one libpg_query's
fingerprint ignores too (constants, comments), so the key never maps two fingerprints to
one entry; text the regex could misread (escape strings, quoted identifiers, dollar
quoting, backslashes) is keyed by its exact text instead. The cache is bounded: it is
cleared when full, which costs only recomputation.

Even that key costs ~2.3 us per event (CPython scans for a digit class char by char), so a
*shape* is looked up first: the UTF-8 text outside string literals, every ASCII digit run
collapsed to one ``0`` (a byte translation and a literal-prefixed regex, ~0.7 us). A shape is
stored only from text that ``cache_key`` reads as safe, whose quotes pair up outside
comments, and whose every digit run stands alone (no letter, ``_``, ``$`` or non-ASCII
byte next to it: not ``t1``, ``$1``, ``1e5``, ``0x1F``). Another text of that shape differs
from it only in the digits of those runs and in the contents of its strings: the lexer
reads the same tokens, constants whose values neither fingerprint (pglast's, the regex
fallback's) depends on. A text with a backslash (an escape, were
``standard_conforming_strings`` off) still takes the ``cache_key`` path.
"""

from __future__ import annotations

import re

from query_analyzer.core.fingerprint import Fingerprint, fingerprint

# One left-to-right pass so a quote inside a comment and "--" inside a string are read
# as what they are. Numbers only as whole tokens: ``t1`` and ``t2`` stay apart.
# The "not after a word character, $ or ." test is a lookbehind placed after the first
# digit (``\d(?<![\w$.]\d)``) rather than before it: every branch then starts with a character,
# so CPython's engine skips to candidate positions with a charset scan instead of trying
# the pattern at every offset (~35% less time per event on the bench's SQL, same matches).
# A number is followed by neither a word character nor a ".": in ``3.5.1e5`` neither
# ``3.5`` nor ``5.1`` is a whole constant (``1.5.1e5`` would share its key, not its
# fingerprint), nor is the ``5`` of ``.5`` (``.?`` is also ``.''``) or of ``1e-5``.
_WITH_COMMENTS = re.compile(
    r"'[^']*(?:''[^']*)*'|/\*.*?\*/|--[^\n]*|\d(?<![\w$.]\d)(?<![eE][+-]\d)\d*(?:\.\d+)?(?![\w.])",
    re.S,
)
# The common case, without comments: strings, then numbers, each with a constant
# replacement (no per-match Python callback, 3x faster). The lookbehind also keeps $n.
# Strings become '' and numbers 0, not one common mark: ``-5`` is a constant to
# libpg_query but ``-'5'`` an expression.
_STRINGS = re.compile(r"'[^']*(?:''[^']*)*'")
_NUMBERS = re.compile(r"\d(?<![\w$.]\d)(?<![eE][+-]\d)\d*(?:\.\d+)?(?![\w.])")
_DOLLAR_QUOTE = re.compile(r"\$(?!\d)")
_NESTED_COMMENT = re.compile(r"/\*.*/\*", re.S)
# Only DML, where every numeric token is a constant to libpg_query; in utility statements
# numbers can be structure (``FETCH 5``, ``RESTART 5`` are not constants there).
_DML = re.compile(
    r"(?:\s+|/\*.*?\*/|--[^\n]*)*(?:select|insert|update|delete|with|values)\b", re.I | re.S
)


def _unsafe(sql: str) -> bool:
    """Text the regex could misread: quoted identifiers, backslashes, escape strings,
    dollar quoting, nested comments."""
    return (
        '"' in sql
        or "\\" in sql
        or "E'" in sql
        or "e'" in sql
        or ("$" in sql and _DOLLAR_QUOTE.search(sql) is not None)
        or ("/*" in sql and _NESTED_COMMENT.search(sql) is not None)
        or _DML.match(sql) is None
    )


def cache_key(sql: str) -> str:
    if _unsafe(sql):
        return "=" + sql
    if "--" in sql or "/*" in sql:
        # A comment is whitespace to the lexer (``t1/**/x`` is not ``t1x``); the ends are
        # stripped so that a leading or trailing comment costs no miss.
        text = _WITH_COMMENTS.sub(_replace, sql).strip()
    else:
        text = _NUMBERS.sub("0", _STRINGS.sub("''", sql) if "'" in sql else sql)
    # Whitespace is left as is: normalising it costs more than the misses it saves.
    return "~" + text


_DIGITS = b"0123456789"
_MASK_DIGITS = bytes.maketrans(_DIGITS, b"0" * len(_DIGITS))
_RUNS = re.compile(rb"00+")
# Bytes that make a digit part of a word to PostgreSQL's lexer (identifiers, $n, 1e5, 0x1F,
# 1_000) become "a", digits "0"; "a0" or "0a" in a shape is a digit run that is no constant.
_WORDLIKE = bytes(
    [*range(ord("A"), ord("Z") + 1), *range(ord("a"), ord("z") + 1), ord("_"), ord("$")]
) + bytes(range(0x80, 0x100))
_CLASSES = bytes.maketrans(_WORDLIKE, b"a" * len(_WORDLIKE))


def shape_key(sql: str) -> bytes:
    """The UTF-8 text outside string literals (an unterminated one marked by a trailing
    0xff), every ASCII digit run as one ``0``."""
    if "'" not in sql:
        return _RUNS.sub(b"0", sql.encode().translate(_MASK_DIGITS))
    parts = sql.split("'")
    shape = _RUNS.sub(b"0", "'".join(parts[::2]).encode().translate(_MASK_DIGITS))
    # 0xff is in no UTF-8 text: "-'" and "-'', " stay apart.
    return shape if len(parts) % 2 else shape + b"\xff"


def _shape_holds(sql: str, key: str, shape: bytes) -> bool:
    """Whether every text of ``sql``'s shape has ``sql``'s fingerprint (see the module doc)."""
    if key[0] != "~" or sql.count("'") % 2:
        return False
    classes = shape.translate(_CLASSES)
    if b"a0" in classes or b"0a" in classes:
        return False
    # A quote inside a comment would pair up with the wrong one.
    if "--" in sql or "/*" in sql:
        for match in _WITH_COMMENTS.finditer(sql):
            text = match.group()
            if text[0] in "/-" and "'" in text:
                return False
    return True


def _replace(match: re.Match[str]) -> str:
    first = match.group()[0]
    return " " if first in "/-" else "''" if first == "'" else "0"


class FingerprintCache:
    """Maps SQL to its fingerprint. The ``display`` returned is that of the first text seen
    with the key, which differs from another's only in ``$n`` numbering."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: dict[str, Fingerprint] = {}
        self._exact: dict[str, Fingerprint] = {}
        self._shapes: dict[bytes, Fingerprint] = {}
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, sql: str) -> Fingerprint:
        # Texts repeat exactly when applications use bind parameters: skip the regex.
        exact = self._exact.get(sql)
        if exact is not None:
            self.hits += 1
            return exact
        shape = shape_key(sql)
        found = self._shapes.get(shape)
        if found is not None and "\\" not in sql:
            self.hits += 1
            return found
        key = cache_key(sql)
        found = self._by_key(sql, key)
        # Only texts without literals are likely to repeat exactly; caching every literal
        # variant would only churn the dict.
        if key[0] == "=" or len(key) == len(sql) + 1:
            if len(self._exact) >= self._max:
                self._exact.clear()
            self._exact[sql] = found
        elif _shape_holds(sql, key, shape):
            if len(self._shapes) >= self._max:
                self._shapes.clear()
            self._shapes[shape] = found
        return found

    def _by_key(self, sql: str, key: str) -> Fingerprint:
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        if len(self._entries) >= self._max:
            self._entries.clear()
        found = self._entries[key] = fingerprint(sql)
        return found
