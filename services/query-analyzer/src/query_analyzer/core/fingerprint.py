"""Query fingerprints with libpg_query (pglast), the algorithm pganalyze uses.

SQL that does not parse (truncated, another dialect) falls back to a regex
normalisation; the kind used is recorded with the fingerprint, and so is the version of
the algorithm, since fingerprints from different versions are not comparable.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

import pglast
from pglast import parser

FINGERPRINT_VERSION = f"pglast-{pglast.__version__.lstrip('v')}"
REGEX_VERSION = "regex-1"


class FingerprintKind(enum.StrEnum):
    PARSED = "parsed"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    value: str
    kind: FingerprintKind
    version: str
    display: str  # normalised text without comments or literals, for humans


_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
# Strings and comments in one left-to-right pass: ``'a--b'`` is a string, not the start
# of a comment, and ``-- it's`` is a comment, not the start of a string.
_STRING_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|/\*.*?\*/|--[^\n]*", re.S)
# A bind parameter ($1) counts as a literal, as it does for libpg_query's fingerprint.
_NUMBER = re.compile(r"\$?\b\d+(?:\.\d+)?\b")
_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_SPACE = re.compile(r"\s+")
_MAX_DISPLAY = 4000


def _regex_normalise(sql: str) -> str:
    text = _STRING_OR_COMMENT.sub(lambda m: "?" if m.group().startswith("'") else " ", sql)
    text = _NUMBER.sub("?", text)
    text = _IN_LIST.sub("(?)", text)
    # A trailing ";" is not part of the statement's shape (libpg_query ignores it too).
    return _SPACE.sub(" ", text).strip().rstrip("; ").lower()


def fingerprint(sql: str) -> Fingerprint:
    try:
        value = parser.fingerprint(sql)
        display = parser.normalize(sql)
    except parser.ParseError:
        normalised = _regex_normalise(sql)
        digest = hashlib.sha256(normalised.encode()).hexdigest()[:16]
        return Fingerprint(digest, FingerprintKind.REGEX, REGEX_VERSION, normalised[:_MAX_DISPLAY])
    display = _SPACE.sub(" ", _COMMENT.sub(" ", display)).strip()
    return Fingerprint(value, FingerprintKind.PARSED, FINGERPRINT_VERSION, display[:_MAX_DISPLAY])
