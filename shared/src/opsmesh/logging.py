"""Structured JSON logging: one JSON object per line on stderr.

stdlib loggers (aiokafka, aiohttp) are routed through the same renderer so every
line a service prints parses as JSON. Repeated lines are throttled (``RepeatThrottle``):
during a broker outage aiokafka logs every failed reconnect, ~100k lines in 8 minutes.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog

_REDACTED = "***"
_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization", "dsn", "api_key"})


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _REDACTED
    return event_dict


SUPPRESSED_FIELD = "similar_suppressed"


@dataclass(slots=True)
class _Repeats:
    interval: float
    next_at: float
    last_seen: float
    suppressed: int = 0


class RepeatThrottle(logging.Filter):
    """Throttles repeated records per (logger, message template), with backoff.

    The first record of a template passes; while more keep coming, one passes per
    interval, which doubles from ``initial_s`` up to ``max_s``. The record that passes
    carries ``similar_suppressed``: how many of its kind were dropped since the last one.
    A template quiet for ``reset_after_s`` starts over (its next record passes with the
    count). The template of a stdlib record is its unformatted message (``"Unable connect
    to node with id %s: %s"``), of a structlog record its event, so the arguments that
    vary (a node, an offset) do not make records different.
    """

    def __init__(
        self,
        *,
        initial_s: float = 1.0,
        max_s: float = 60.0,
        reset_after_s: float | None = None,
        max_keys: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._initial_s = initial_s
        self._max_s = max_s
        self._reset_after_s = reset_after_s if reset_after_s is not None else 2 * max_s
        self._max_keys = max_keys
        self._monotonic = monotonic
        self._lock = threading.Lock()  # records may come from other threads (psycopg)
        self._seen: dict[tuple[str, int, str], _Repeats] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, _template(record))
        now = self._monotonic()
        with self._lock:
            repeats = self._seen.get(key)
            if repeats is None or now - repeats.last_seen >= self._reset_after_s:
                if repeats is None and len(self._seen) >= self._max_keys:
                    self._seen.clear()  # bounded: forget every template, start over
                carried = repeats.suppressed if repeats is not None else 0
                self._seen[key] = _Repeats(self._initial_s, now + self._initial_s, now)
                suppressed = carried
            else:
                repeats.last_seen = now
                if now < repeats.next_at:
                    repeats.suppressed += 1
                    return False
                suppressed, repeats.suppressed = repeats.suppressed, 0
                repeats.interval = min(repeats.interval * 2, self._max_s)
                repeats.next_at = now + repeats.interval
        if suppressed:
            _mark_suppressed(record, suppressed)
        return True


def _template(record: logging.LogRecord) -> str:
    message = record.msg
    if isinstance(message, dict):  # structlog's event dict (wrap_for_formatter)
        return str(message.get("event", ""))
    return str(message)


def _mark_suppressed(record: logging.LogRecord, count: int) -> None:
    if isinstance(record.msg, dict):
        record.msg = {**record.msg, SUPPRESSED_FIELD: count}
    else:
        setattr(record, SUPPRESSED_FIELD, count)  # rendered by the ExtraAdder below


def configure_logging(service: str, level: str = "INFO") -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(allow=(SUPPRESSED_FIELD,))],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # After tracebacks are text: an exception's message often holds the URL it
            # failed on (aiohttp's do), and URLs carry secrets (Slack webhook paths,
            # tokens in query strings, passwords in userinfo).
            _redact_urls_in_event,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatThrottle())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless debugging.
    for noisy in ("aiokafka", "aiohttp.access", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


# scheme://authority then anything up to whitespace or a quote/bracket that ends a URL
# written inside a message or a repr.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20})://([^\s/?#'\"<>()]*)([^\s'\"<>()]*)")


def _reduce(match: re.Match[str]) -> str:
    scheme, authority, rest = match.group(1), match.group(2), match.group(3)
    host = authority.rpartition("@")[2]  # drop user:password@
    return f"{scheme}://{host}/..." if rest.strip("/") or "@" in authority else f"{scheme}://{host}"


def redact_urls(text: str) -> str:
    """Every URL in ``text``: ``scheme://user:secret@host:port/path?query`` → ``scheme://host:port/...``.

    Secrets live in every other part of a URL (Slack webhook paths, tokens in query
    strings, passwords in userinfo), so logs and errors keep only where it went."""
    return _URL.sub(_reduce, text) if "://" in text else text


def _redact_urls_in_event(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and "://" in value:
            event_dict[key] = redact_urls(value)
    return event_dict
