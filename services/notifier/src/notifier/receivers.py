"""Receivers: names that alert-engine routes to, mapped onto channels.

The file format follows Alertmanager's ``receivers`` section, so an existing
configuration's receivers carry over (webhook channels now; others follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml


class WebhookConfig(msgspec.Struct, forbid_unknown_fields=False):
    url: str
    # Standard Webhooks secrets ("whsec_<base64>"); several may be active during rotation.
    secrets: list[str] = []
    send_resolved: bool = True


class ReceiverConfig(msgspec.Struct, forbid_unknown_fields=False):
    name: str
    webhook_configs: list[WebhookConfig] = []


class ReceiversFile(msgspec.Struct, forbid_unknown_fields=False):
    receivers: list[ReceiverConfig]


@dataclass(frozen=True, slots=True)
class Receivers:
    by_name: dict[str, ReceiverConfig]

    def get(self, name: str) -> ReceiverConfig | None:
        return self.by_name.get(name)


class ReceiversError(ValueError):
    pass


def load_receivers(path: str | None, default_webhook_url: str | None) -> Receivers:
    configs: dict[str, ReceiverConfig] = {}
    if path:
        try:
            raw = yaml.safe_load(Path(path).read_text())
            parsed = msgspec.convert(raw, ReceiversFile)
        except (OSError, yaml.YAMLError, msgspec.ValidationError) as exc:
            raise ReceiversError(f"{path}: {exc}") from None
        for receiver in parsed.receivers:
            if receiver.name in configs:
                raise ReceiversError(f"{path}: receiver {receiver.name!r} defined twice")
            configs[receiver.name] = receiver
    if default_webhook_url and "default" not in configs:
        configs["default"] = ReceiverConfig(
            name="default", webhook_configs=[WebhookConfig(url=default_webhook_url)]
        )
    return Receivers(configs)
