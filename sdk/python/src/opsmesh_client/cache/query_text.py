"""What the L3 query cache reads from a statement's text: a normalized form (the key's
base), the tables it reads (the tags its result is invalidated by), and whether it may be
cached at all (a read, not a write or a locking read).

Normalization builds on what the SDK's hooks already send (``sqltext.postgres_placeholders``:
``%s``/``%(name)s`` become ``$n``), then drops comments, folds whitespace and lowercases
everything outside string literals and quoted identifiers, so the same query written with
other spacing, case or comments has one fingerprint. No parser is used (the SDK has no
dependency on libpg_query): the table scan is a tokenizer that reads the items after
``FROM`` and ``JOIN``. Reading too many names (a CTE's name, a function's) only
invalidates more often; a table read through a view or a function is not seen, so such a
query must be given its tables (``tables=``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

from opsmesh_client.cache.settings import CacheError
from opsmesh_client.sqltext import postgres_placeholders

# Strings, quoted identifiers, comments, blanks, words, placeholders and numbers, then
# any other character (an operator of two characters is two tokens, however written).
_TOKEN = re.compile(
    r"""(?P<str>'(?:[^']|'')*')|(?P<qid>"(?:[^"]|"")*")|(?P<comment>/\*.*?\*/|--[^\n]*)"""
    r"""|(?P<space>\s+)|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<num>\$?\d+(?:\.\d+)?)"""
    r"""|(?P<other>.)""",
    re.S,
)
_WRITES = frozenset({"insert", "update", "delete", "merge", "truncate", "copy", "call", "do"})
_LOCKING = frozenset({"share", "update"})  # after FOR: SELECT ... FOR UPDATE/SHARE
_ITEM_END = frozenset(
    {
        "where",
        "group",
        "order",
        "limit",
        "offset",
        "having",
        "window",
        "union",
        "intersect",
        "except",
        "join",
        "inner",
        "left",
        "right",
        "full",
        "cross",
        "natural",
        "on",
        "using",
        "for",
        "fetch",
        "returning",
        "select",
    }
)
_SKIP_BEFORE_ITEM = frozenset({"only", "lateral"})


def _tokens(sql: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        yield kind, match.group()


def normalize(sql: str) -> str:
    """The tokens joined by one space: ``id=%s`` and ``ID = $1`` are both ``id = $1``."""
    parts = [
        text if kind in ("str", "qid") else text.lower()
        for kind, text in _tokens(postgres_placeholders(sql))
        if kind not in ("comment", "space")
    ]
    while parts and parts[-1] == ";":
        parts.pop()
    return " ".join(parts)


def _words(normalized: str) -> list[str]:
    """Words, quoted identifiers and punctuation; strings become one opaque token."""
    out: list[str] = []
    for kind, text in _tokens(normalized):
        if kind == "str":
            out.append("''")
        elif kind != "space":
            out.append(text)
    return out


def _name(token: str) -> str | None:
    if token.startswith('"'):
        return token[1:-1].replace('""', '"')
    if token[0].isalpha() or token[0] == "_":
        return token
    return None


def check_read(words: list[str]) -> None:
    for i, word in enumerate(words):
        if word in _WRITES:
            raise CacheError(f"not a read ({word}): only queries are cached")
        if word == "for" and i + 1 < len(words) and words[i + 1] in _LOCKING:
            raise CacheError("a locking read (FOR UPDATE/SHARE) is not cached")


def tables_read(normalized: str) -> frozenset[str]:
    """The table names (without schema) after FROM and JOIN; raises ``CacheError`` for a
    statement that writes or locks."""
    words = _words(normalized)
    check_read(words)
    tables: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word not in ("from", "join"):
            continue
        while True:
            while i < len(words) and words[i] in _SKIP_BEFORE_ITEM:
                i += 1
            if i >= len(words) or words[i] == "(":
                break  # a subquery: its own FROM is read as the scan goes on
            name = _name(words[i])
            if name is None:
                break
            i += 1
            while i + 1 < len(words) and words[i] == ".":  # schema.table: keep the table
                qualified = _name(words[i + 1])
                if qualified is None:
                    break
                name = qualified
                i += 2
            tables.add(name)
            if word == "join":
                break
            i = _skip_alias(words, i)
            if i < len(words) and words[i] == ",":
                i += 1
                continue
            break
    return frozenset(tables)


def _skip_alias(words: list[str], i: int) -> int:
    """Past ``[AS] alias [(columns)]`` up to a comma or the end of the FROM item."""
    depth = 0
    while i < len(words):
        word = words[i]
        if word == "(":
            depth += 1
        elif word == ")":
            if depth == 0:
                return i
            depth -= 1
        elif depth == 0 and (word == "," or word in _ITEM_END):
            return i
        i += 1
    return i


def fingerprint(normalized: str, params: Any) -> str:
    """The key of a query's result: its normalized text and its parameters (with their
    types, so ``1`` and ``"1"`` differ)."""
    encoded = json.dumps(
        params, sort_keys=True, default=lambda o: [type(o).__name__, str(o)], separators=(",", ":")
    )
    return hashlib.sha256(f"{normalized}\0{encoded}".encode()).hexdigest()[:32]
