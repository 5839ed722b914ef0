"""Bounded Content-Encoding decoding of request bodies."""

from __future__ import annotations

import gzip
import zlib

import pytest

from metrics_ingest.rollup.decompress import BodyDecodeError, DecodeProblem, decompress

BODY = b'{"samples": []}'


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("", BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, as some clients send it
    ],
)
def test_each_encoding_round_trips(encoding: str, data: bytes) -> None:
    assert decompress(data, encoding, limit=1024) == BODY


def test_a_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    with pytest.raises(BodyDecodeError) as caught:
        decompress(bomb, "gzip", limit=1_000_000)
    assert caught.value.problem is DecodeProblem.TOO_LARGE


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", BODY),  # not gzip at all
        ("gzip", gzip.compress(BODY)[:12]),  # truncated
        ("deflate", b"\x78\x9c garbage"),
    ],
)
def test_data_that_does_not_decompress_is_unreadable(encoding: str, data: bytes) -> None:
    with pytest.raises(BodyDecodeError) as caught:
        decompress(data, encoding, limit=1024)
    assert caught.value.problem is DecodeProblem.UNREADABLE
