"""The Django template tag and the Jinja filter: the region from the request's headers,
image parameters, and failover seen through the template.

Django is used through a standalone template ``Engine`` (no global settings: the SDK's
framework tests configure Django for the whole process, and the tag must not need it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import jinja2
import pytest
from django.http.request import HttpHeaders
from django.template import Context, Engine

from opsmesh_client.cdn import CdnProvider, CdnRouter, RoutingPolicy, StaticHealth, configure
from opsmesh_client.cdn.jinja import install

from .cdn_testing import FakeProvider

TAGS = "opsmesh_client.cdn.djangoapp.templatetags.opsmesh_cdn"


@pytest.fixture
def health() -> Iterator[StaticHealth]:
    health = StaticHealth()
    providers: list[CdnProvider] = [FakeProvider("cloudflare"), FakeProvider("fastly")]
    policy = RoutingPolicy(
        default=("cloudflare", "fastly"), regions={"eu": ("fastly",)}, countries={"DE": "eu"}
    )
    configure(CdnRouter(providers, policy, health))
    try:
        yield health
    finally:
        configure(None)


@dataclass
class Request:
    """What the tag reads of Django's ``HttpRequest`` (which needs settings to construct):
    its ``headers``, Django's own case-insensitive view of the WSGI environ."""

    headers: HttpHeaders


def _request(**headers: str) -> Request:
    return Request(HttpHeaders({f"HTTP_{name.upper()}": v for name, v in headers.items()}))


def _django(source: str, request: Request | None) -> str:
    engine = Engine(libraries={"opsmesh_cdn": TAGS})
    return engine.from_string(source).render(Context({"request": request}))


def test_the_django_tag_routes_by_the_viewer_country_header(health):
    source = '{% load opsmesh_cdn %}{% cdn_url "img/logo.png" width=200 %}'
    assert _django(source, _request(CLOUDFRONT_VIEWER_COUNTRY="DE")) == (
        "https://fastly.example/img/logo.png?w=200"
    )
    assert _django(source, _request(CF_IPCOUNTRY="DE")) == (
        "https://fastly.example/img/logo.png?w=200"
    )
    assert _django(source, _request()) == "https://cloudflare.example/img/logo.png?w=200"
    assert _django(source, None) == "https://cloudflare.example/img/logo.png?w=200"

    health.set("fastly", False)
    assert _django(source, _request(CF_IPCOUNTRY="DE")) == (
        "https://cloudflare.example/img/logo.png?w=200"
    )


def test_the_django_tag_takes_a_region_and_variables():
    providers: list[CdnProvider] = [FakeProvider("a"), FakeProvider("b")]
    configure(CdnRouter(providers, RoutingPolicy(default=("a", "b"), regions={"eu": ("b",)})))
    try:
        source = '{% load opsmesh_cdn %}{% cdn_url path region="eu" width=w %}'
        engine = Engine(libraries={"opsmesh_cdn": TAGS})
        rendered = engine.from_string(source).render(Context({"path": "x.png", "w": "64"}))
    finally:
        configure(None)
    assert rendered == "https://b.example/x.png?w=64"


def test_the_jinja_filter_reads_the_region_from_the_contexts_request(health):
    environment = jinja2.Environment(autoescape=True)
    install(environment)
    template = environment.from_string('{{ "img/logo.png" | cdn_url(width=200) }}')
    assert template.render(request=_request(CF_IPCOUNTRY="DE")) == (
        "https://fastly.example/img/logo.png?w=200"
    )
    assert template.render() == "https://cloudflare.example/img/logo.png?w=200"
    explicit = environment.from_string('{{ "a.css" | cdn_url(region="DE") }}')
    assert explicit.render() == "https://fastly.example/a.css"

    health.set("fastly", False)
    assert template.render(request=_request(CF_IPCOUNTRY="DE")) == (
        "https://cloudflare.example/img/logo.png?w=200"
    )


def test_the_jinja_filter_with_its_own_headers_and_router():
    providers: list[CdnProvider] = [FakeProvider("a"), FakeProvider("b")]
    router = CdnRouter(providers, RoutingPolicy(default=("a", "b"), regions={"NL": ("b",)}))
    environment = jinja2.Environment(autoescape=True)
    install(environment, region_headers=["X-Country"], router=router)
    template = environment.from_string('{{ "x.js" | cdn_url }}')
    assert template.render(request=_request(X_COUNTRY="NL")) == "https://b.example/x.js"
    assert template.render(request=_request(CF_IPCOUNTRY="NL")) == "https://a.example/x.js"


DJANGO_SITE = """
import sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["opsmesh_client.cdn.djangoapp"],
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    OPSMESH_CDN_CONFIG=sys.argv[1],
    OPSMESH_CDN_REGION_HEADERS=["X-Viewer-Country"],
    ALLOWED_HOSTS=["testserver"],
)
django.setup()
from django.template import engines
from django.test import RequestFactory

template = engines["django"].from_string(
    '{% load opsmesh_cdn %}{% cdn_url "img/logo.png" width=200 %}'
)
for headers in ({"X-Viewer-Country": "DE"}, {"CF-IPCountry": "DE"}):
    print(template.render({"request": RequestFactory().get("/", headers=headers)}))
"""


def test_the_django_app_reads_its_settings_and_its_tag_library_is_found(tmp_path):
    # A process of its own: Django's settings are configured once per process.
    cdn_file = tmp_path / "cdn.json"
    cdn_file.write_text(
        json.dumps(
            {
                "providers": {
                    name: {
                        "type": "fastly",
                        "base_url": f"https://{name}.example",
                        "service_id": "svc",
                        "api_key_env": "FASTLY_TEST_KEY",
                    }
                    for name in ("world", "europe")
                },
                "routing": {"regions": {"eu": ["europe"]}, "countries": {"DE": "eu"}},
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-c", DJANGO_SITE, str(cdn_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FASTLY_TEST_KEY": "k"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "https://europe.example/img/logo.png?width=200",
        "https://world.example/img/logo.png?width=200",
    ]
