"""Undo a request body's Content-Encoding, bounded: a few kilobytes that inflate to
gigabytes stop at the limit, and data that does not decompress is the client's error."""

from __future__ import annotations

import enum
import zlib

ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate"})
_CHUNK = 64 * 1024


class DecodeProblem(enum.StrEnum):
    UNREADABLE = "unreadable_body"
    TOO_LARGE = "too_large"


class BodyDecodeError(ValueError):
    def __init__(self, problem: DecodeProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded per ``encoding`` (one of ``ENCODINGS``), at most ``limit`` bytes."""
    if encoding in ("", "identity"):
        return body
    # gzip: a gzip header; deflate: zlib-wrapped (RFC 9110) or, as some clients send, raw.
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else _deflate_wbits(body)
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    pending = body
    try:
        while pending:
            out += inflater.decompress(pending, _CHUNK)
            if len(out) > limit:
                raise BodyDecodeError(
                    DecodeProblem.TOO_LARGE, f"the body inflates past {limit} bytes"
                )
            pending = inflater.unconsumed_tail
            if inflater.eof:
                break
    except zlib.error as exc:
        raise BodyDecodeError(
            DecodeProblem.UNREADABLE, f"the body is not valid {encoding} data: {exc}"
        ) from None
    if not inflater.eof:
        raise BodyDecodeError(DecodeProblem.UNREADABLE, f"the {encoding} data is truncated")
    return bytes(out)


def _deflate_wbits(body: bytes) -> int:
    if len(body) >= 2 and (body[0] & 0x0F) == 8 and (body[0] << 8 | body[1]) % 31 == 0:
        return zlib.MAX_WBITS
    return -zlib.MAX_WBITS
