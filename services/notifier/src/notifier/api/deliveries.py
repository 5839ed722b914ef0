"""``GET /api/v1/deliveries``: the delivery log, newest first, filtered; and
``GET /api/v1/deliveries/summary``: per receiver and integration, delivered, failed and
retried counts over a window, the last failure, and this instance's circuit breakers
(CDN purges under receiver ``cdn``, integration ``cdn:<provider>``)."""

from __future__ import annotations

from aiohttp import web

from notifier.api.errors import bad_parameter
from notifier.bootstrap import SERVICES
from notifier.core.purge_plan import PURGE_RECEIVER
from notifier.core.purge_plan import integration as purge_integration
from notifier.delivery.reads import MAX_KEYS, MAX_LIMIT, DeliveryFilter, DeliveryReads

RESULTS = ("delivered", "failed")
MAX_WINDOW_S = 30 * 24 * 3600
MAX_PARAMETER = 1024  # an idempotency key is at most 256 characters, names fewer


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise bad_parameter(f"{name} must be a number") from None
    if not low <= value <= high:
        raise bad_parameter(f"{name} must be between {low:g} and {high:g}")
    return value


def _filter(request: web.Request) -> DeliveryFilter:
    for name, value in request.query.items():
        # PostgreSQL text cannot hold NUL: refused here, not as a server error there.
        if "\x00" in value or len(value) > MAX_PARAMETER:
            raise bad_parameter(f"{name[:100]!r} holds NUL or is over {MAX_PARAMETER} characters")
    result = request.query.get("result") or None
    if result is not None and result not in RESULTS:
        raise bad_parameter(f"result must be one of {', '.join(RESULTS)}")
    keys = tuple(k for k in request.query.getall("idempotency_key", []) if k)
    if len(keys) > MAX_KEYS:
        raise bad_parameter(f"at most {MAX_KEYS} idempotency_key values")
    before = request.query.get("before")
    return DeliveryFilter(
        receiver=request.query.get("receiver") or None,
        integration=request.query.get("integration") or None,
        outcome=result,
        keys=keys,
        before=_number(request, "before", 0, 0, 1e12) if before else None,
        limit=int(_number(request, "limit", 100, 1, MAX_LIMIT)),
    )


async def list_deliveries(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    rows = await DeliveryReads(services.runtime.pool).deliveries(_filter(request))
    return web.json_response(rows)


async def summary(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    window = _number(request, "window_s", 24 * 3600, 60, MAX_WINDOW_S)
    rows = await DeliveryReads(services.runtime.pool).summary(window)
    breakers = services.stage.breakers()
    configured = {
        (name, integration)
        for name, receiver in services.table.receivers.by_name.items()
        for integration, _, _ in receiver.integrations()
    }
    if services.purges is not None:
        # CDN purges share the delivery log: receiver "cdn", one integration per provider.
        for provider, breaker in services.purges.breakers().items():
            pair = (PURGE_RECEIVER, purge_integration(provider))
            configured.add(pair)
            breakers[pair] = breaker
    seen = {(r["receiver"], r["integration"]) for r in rows}
    empty = {
        "delivered": 0,
        "failed": 0,
        "retried": 0,
        "retries": 0,
        "last_failure_at": None,
        "last_error": None,
    }
    rows += [{"receiver": r, "integration": i, **empty} for r, i in sorted(configured - seen)]
    for row in rows:
        pair = (row["receiver"], row["integration"])
        row["configured"] = pair in configured
        row["breaker"] = breakers.get(pair, {"state": "closed", "failures": 0, "retry_in_s": 0.0})
    rows.sort(key=lambda r: (r["receiver"], r["integration"]))
    return web.json_response({"window_s": window, "integrations": rows})
