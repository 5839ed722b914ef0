"""The shop's Django settings, from the environment: ``SHOP_DSN`` is its PostgreSQL (a
libpq connection string or URL), ``SHOP_SECRET_KEY`` optional (the shop keeps no
sessions or signed data, so a key made at start does)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from psycopg.conninfo import conninfo_to_dict


def database(dsn: str) -> dict[str, Any]:
    """Django's ``DATABASES`` entry for a libpq DSN (psycopg 3 under Django's backend)."""
    parts = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.pop("dbname", ""),
        "HOST": parts.pop("host", ""),
        "PORT": parts.pop("port", ""),
        "USER": parts.pop("user", ""),
        "PASSWORD": parts.pop("password", ""),
        "OPTIONS": parts,  # sslmode and the like, passed on to psycopg
    }


SECRET_KEY = os.environ.get("SHOP_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]
INSTALLED_APPS = ["examples.shop"]
# The SDK's middleware: request metrics and profiles by URL pattern, the /health/ probes,
# and its execute_wrapper on every database connection (each query, under its request).
MIDDLEWARE = ["opsmesh_client.integrations.django.OpsmeshMiddleware"]
ROOT_URLCONF = "examples.shop.urls"
WSGI_APPLICATION = "examples.shop.wsgi.application"
DATABASES = {"default": database(os.environ.get("SHOP_DSN", "dbname=shop"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
