from __future__ import annotations

from django.apps import AppConfig


# Django ships no types: mypy sees AppConfig as Any.
class OpsmeshCdnConfig(AppConfig):  # type: ignore[misc]
    name = "opsmesh_client.cdn.djangoapp"
    label = "opsmesh_cdn"
    verbose_name = "opsmesh CDN"

    def ready(self) -> None:
        from django.conf import settings  # noqa: PLC0415

        from opsmesh_client.cdn.urls import configure_from_file  # noqa: PLC0415

        path = getattr(settings, "OPSMESH_CDN_CONFIG", None)
        if path:
            configure_from_file(path)
