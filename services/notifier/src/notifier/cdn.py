"""The CDN providers the purge consumer purges, read from ``NOTIFIER_CDN_PROVIDERS_FILE``.

The file is the SDK's provider configuration (``opsmesh_client.cdn.config``: a mapping of
name → configuration, credentials named by environment variable, never written in it).
It is read when the app is built, so a file that does not load stops the service at start
with the reason. Provider names must fit the purge events' pattern (they are the
``provider`` label of the purge signals and part of the delivery log's key).
"""

from __future__ import annotations

import re

from opsmesh.events.cdn import PROVIDER_NAME_PATTERN
from opsmesh_client.cdn.provider import CdnProvider

_NAME = re.compile(PROVIDER_NAME_PATTERN)


class CdnProvidersError(ValueError):
    """The providers file does not load; the message says where and why."""


def checked(providers: list[CdnProvider], where: str) -> tuple[CdnProvider, ...]:
    for provider in providers:
        if not _NAME.match(provider.name):
            raise CdnProvidersError(
                f"{where}: provider name {provider.name!r} must match {PROVIDER_NAME_PATTERN}"
            )
    return tuple(providers)


def load_providers(path: str | None) -> tuple[CdnProvider, ...]:
    """The providers the file configures; none without a file."""
    if not path:
        return ()
    from opsmesh_client.cdn.config import providers_from_file  # noqa: PLC0415

    try:
        return checked(providers_from_file(path), path)
    except (OSError, ValueError) as exc:
        raise CdnProvidersError(f"NOTIFIER_CDN_PROVIDERS_FILE {path}: {exc}") from exc
