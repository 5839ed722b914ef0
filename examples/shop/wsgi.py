"""The shop's WSGI application, with the SDK started before Django loads the middleware.

Settings of the SDK come from ``OPSMESH_*`` (``OPSMESH_KAFKA_BOOTSTRAP``,
``OPSMESH_ENVIRONMENT``, ``OPSMESH_PROFILE_SLOW_MS``, ...; docs/producing.md).
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

import opsmesh_client
from examples.shop import telemetry

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.shop.settings")
application = get_wsgi_application()
telemetry.setup(opsmesh_client.init(service=os.environ.get("OPSMESH_SERVICE", "shop")))
