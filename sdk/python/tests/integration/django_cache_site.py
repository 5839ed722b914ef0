"""A Django site whose views are cached with ``cache_view`` over a real Redis, driven with
Django's test client in a process of its own (Django's settings are process-wide):
``python django_cache_site.py REDIS_URL PREFIX`` prints what each step observed, as JSON,
for ``test_cache_views.py`` to check."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from opsmesh_client.cache import Cache, Namespace, RedisStore
from opsmesh_client.cache.django_views import cache_view

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.test import Client, RequestFactory  # noqa: E402 - after settings

URL, PREFIX = sys.argv[1], sys.argv[2]
NOW = [time.time()]
PAGES = Namespace("pages", ttl_s=60, lease_s=10)
ONE = Cache(RedisStore(URL), [PAGES], prefix=PREFIX, clock=lambda: NOW[0])
TWO = Cache(RedisStore(URL), [PAGES], prefix=PREFIX, clock=lambda: NOW[0])
CALLS: Counter[str] = Counter()


def page(request: HttpRequest) -> HttpResponse:
    CALLS["page"] += 1
    language = request.headers.get("Accept-Language", "en")
    response = HttpResponse(f"page {CALLS['page']} {language} {request.GET.urlencode()}")
    response["Cache-Control"] = request.GET.get("cc", "public")
    return response


def cookie(request: HttpRequest) -> HttpResponse:
    CALLS["cookie"] += 1
    response = HttpResponse("hi")
    response.set_cookie("sid", "secret")
    return response


def failing(request: HttpRequest) -> HttpResponse:
    CALLS["failing"] += 1
    return HttpResponse("down", status=503)


def themed(request: HttpRequest) -> HttpResponse:
    CALLS["themed"] += 1
    response = HttpResponse(f"theme {request.headers.get('X-Theme')}")
    response["Vary"] = "X-Theme"
    return response


def slow(request: HttpRequest) -> HttpResponse:
    CALLS["slow"] += 1
    # Every request of the stampede has missed before the one load answers.
    deadline = time.monotonic() + 30
    while ONE.tiers.counts["pages"].misses < STAMPEDE_MISSES and time.monotonic() < deadline:
        time.sleep(0.005)  # polling a condition, with a deadline
    return HttpResponse("slow")


def personal(request: HttpRequest) -> HttpResponse:
    CALLS["personal"] += 1
    return HttpResponse(f"for {request.headers.get('Cookie')}")


cached = cache_view(ONE, namespace="pages", vary=("Accept-Language",))
STAMPEDE_MISSES = 0
urlpatterns = [
    path("page", cached(page)),
    path("cookie", cached(cookie)),
    path("failing", cached(failing)),
    path("themed", cached(themed)),
    path("slow", cached(slow)),
    path("personal", cached(personal)),
    path(
        "opted", cache_view(ONE, namespace="pages", allow_cookies=True, vary=("Cookie",))(personal)
    ),
]


def seen(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "body": response.content.decode(),
        "age": response.headers.get("Age"),
        "length": response.headers.get("Content-Length"),
    }


def main() -> None:
    global STAMPEDE_MISSES  # noqa: PLW0603 - the slow view's condition
    client = Client()
    out: dict[str, Any] = {}
    out["first"] = seen(client.get("/page?b=2&a=1"))
    NOW[0] += 7
    out["reordered"] = seen(client.get("/page?a=1&b=2"))
    out["head"] = seen(client.head("/page?a=1&b=2"))
    out["french"] = seen(client.get("/page?a=1&b=2", headers={"accept-language": "fr"}))
    # The other instance, for the same URL: the response the first stored in Redis.
    other = cache_view(TWO, namespace="pages", vary=("Accept-Language",))(page)
    out["other_instance"] = seen(other(RequestFactory().get("/page?a=1&b=2")))
    out["post"] = seen(client.post("/page?a=1&b=2"))
    out["page_calls"] = CALLS["page"]
    for name in ("cookie", "failing"):
        # A client of their own: the test client sends back the cookie it was given.
        for _ in "ab":
            Client().get(f"/{name}")
    client.get("/page?cc=private")
    client.get("/page?cc=private")
    client.get("/page?cc=max-age%3D5")
    NOW[0] += 3
    out["max_age_hit"] = seen(client.get("/page?cc=max-age%3D5"))
    NOW[0] += 3
    out["max_age_expired"] = seen(client.get("/page?cc=max-age%3D5"))
    out["dark"] = [seen(client.get("/themed", headers={"x-theme": "dark"}))["body"] for _ in "ab"]
    out["light"] = [seen(client.get("/themed", headers={"x-theme": "light"}))["body"] for _ in "ab"]
    for _ in "ab":
        client.get("/personal", headers={"cookie": "sid=1"})
        client.get("/opted", headers={"cookie": "sid=2"})
        client.get("/personal", headers={"authorization": "Bearer t"})
    out["opted_other_cookie"] = seen(client.get("/opted", headers={"cookie": "sid=3"}))["body"]
    STAMPEDE_MISSES = ONE.tiers.counts["pages"].misses + 8
    bodies: list[str] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(Client().get("/slow").content.decode()))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    out["stampede"] = bodies
    out["calls"] = dict(CALLS)
    ONE.close()
    TWO.close()
    print(json.dumps(out))


main()
