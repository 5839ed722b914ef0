"""``GET /api/v1/dead-letters``: the notification requests the notifier dead-lettered
(failed deliveries, unconfigured receivers, unstorable requests) and its failed CDN
purges (``receiver`` ``cdn``, ``integration`` ``cdn:<provider>``), newest first, each with
its delivery's outcome in the log now (``delivered`` once a replay succeeded); and
``POST /api/v1/dead-letters/{id}/replay`` (a ``write`` token, ``notifier.api.auth``)."""

from __future__ import annotations

from aiohttp import web

from notifier.api.errors import bad_parameter, refuse
from notifier.bootstrap import SERVICES, Services
from notifier.delivery.dead_letters import DeadLetters, LetterNotFound, NotReplayable
from notifier.delivery.reads import DeliveryReads

MAX_LIMIT = 500
# DLQ records read per partition for a listing: the bound on its cost.
MAX_SCAN = 5000


def _letters(services: Services) -> DeadLetters:
    runtime = services.runtime
    settings = services.settings
    sources: tuple[str, ...] = (settings.requests_topic,)
    if services.purges is not None:
        sources += (settings.cdn_purges_topic,)
    return DeadLetters(runtime.connection, runtime.producer, source_topics=sources)


def _int(request: web.Request, name: str, default: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_parameter(f"{name} must be an integer") from None
    if not 1 <= value <= high:
        raise bad_parameter(f"{name} must be between 1 and {high}")
    return value


async def list_dead_letters(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = _int(request, "limit", 100, MAX_LIMIT)
    scan = _int(request, "scan", 1000, MAX_SCAN)
    wanted = {
        name: request.query[name]
        for name in ("receiver", "group_key", "integration", "idempotency_key")
        if request.query.get(name)
    }
    rows = []
    for letter in await _letters(services).recent(scan):
        row = letter.json()
        if all(row.get(name) == value for name, value in wanted.items()):
            rows.append(row)
        if len(rows) == limit:
            break
    pairs = [
        (row["idempotency_key"], row["integration"])
        for row in rows
        if row.get("idempotency_key") and row.get("integration")
    ]
    now = await DeliveryReads(services.runtime.pool).outcomes(pairs)
    for row in rows:
        row["delivery_now"] = now.get((row.get("idempotency_key", ""), row["integration"] or ""))
    return web.json_response(rows)


async def replay(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    letters = _letters(services)
    try:
        letter = await letters.get(request.match_info["id"])
        topic = await letters.replay(letter)
    except LetterNotFound as exc:
        raise refuse(web.HTTPNotFound, "no_such_dead_letter", str(exc)) from None
    except NotReplayable as exc:
        raise refuse(web.HTTPConflict, "not_replayable", str(exc)) from None
    return web.json_response({"replayed": letter.id, "topic": topic}, status=202)
