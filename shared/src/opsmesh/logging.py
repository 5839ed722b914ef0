"""Structured JSON logging: one JSON object per line on stderr.

stdlib loggers (aiokafka, aiohttp) are routed through the same renderer so every
line a service prints parses as JSON.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_REDACTED = "***"
_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization", "dsn", "api_key"})


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _REDACTED
    return event_dict


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
        foreign_pre_chain=shared,
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


def redact_url(url: str) -> str:
    """``scheme://user:secret@host:port/path?query`` → ``scheme://host:port/...``.

    Secrets live in every other part of a URL (Slack webhook paths, tokens in query
    strings, passwords in userinfo), so logs and errors keep only where it went."""
    return _URL.sub(_reduce, url)


def redact_urls(text: str) -> str:
    """Every URL in ``text`` reduced as by :func:`redact_url`."""
    return _URL.sub(_reduce, text) if "://" in text else text


def _redact_urls_in_event(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and "://" in value:
            event_dict[key] = redact_urls(value)
    return event_dict
