"""Alertmanager's configuration file, read once for every service (``loader.py``)."""

from opsmesh.alertmanager.loader import (
    IMPLEMENTED,
    NOT_IMPLEMENTED,
    AlertmanagerConfigError,
    LoadedConfig,
    UnimplementedIntegrationError,
    load_document,
    load_file,
    load_text,
)

__all__ = [
    "IMPLEMENTED",
    "NOT_IMPLEMENTED",
    "AlertmanagerConfigError",
    "LoadedConfig",
    "UnimplementedIntegrationError",
    "load_document",
    "load_file",
    "load_text",
]
