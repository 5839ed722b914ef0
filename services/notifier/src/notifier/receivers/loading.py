"""Reading a receivers file: YAML through the shared Alertmanager loader
(``opsmesh.alertmanager``) into the notifier's typed receivers (``config``), at start
and at every reload (``notifier.receivers.reload``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml
from pydantic import SecretStr

from notifier.receivers.config import (
    GO_TEMPLATES_ONLY,
    IntegrationKind,
    ReceiverConfig,
    Receivers,
    ReceiversError,
    ReceiversFile,
    TemplateLanguage,
    WebhookConfig,
)
from opsmesh.alertmanager import AlertmanagerConfigError, load_document
from opsmesh.yaml_errors import yaml_error_text


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is SecretStr and isinstance(value, str):
        return SecretStr(value)
    raise NotImplementedError(f"cannot decode {kind}")  # msgspec's dec_hook contract


def _addresses(value: Any) -> Any:
    """``to``/``cc`` as Alertmanager writes them (one comma-separated string) or as a list
    (opsmesh's older receivers files): a list of addresses either way."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_receivers(
    raw: Any, where: str = "receivers", base_dir: Path | None = None
) -> dict[str, ReceiverConfig]:
    """Through the shared Alertmanager loader (``opsmesh.alertmanager``): strict shape,
    ``global`` defaults, ``*_file`` secrets read (relative to ``base_dir``), an
    unimplemented integration refused by name; then the notifier's typed receivers."""
    try:
        loaded = load_document(raw, base_dir=base_dir, require_route=False)
    except AlertmanagerConfigError as exc:
        raise ReceiversError(f"{where}: {exc}") from None
    document = loaded.document
    for receiver in document.get("receivers") or []:
        for email in receiver.get("email_configs") or []:
            for key in ("to", "cc"):
                if key in email:
                    email[key] = _addresses(email[key])
    try:
        parsed = msgspec.convert(
            {"receivers": document.get("receivers") or []}, ReceiversFile, dec_hook=_dec_hook
        )
    except (msgspec.ValidationError, ValueError) as exc:
        raise ReceiversError(f"{where}: {exc}") from None
    configs: dict[str, ReceiverConfig] = {}
    for receiver in parsed.receivers:
        _check_http_configs(receiver, where)
        if receiver.name in configs:
            raise ReceiversError(f"{where}: receiver {receiver.name!r} defined twice")
        configs[receiver.name] = receiver
    return configs


def _check_http_configs(receiver: ReceiverConfig, where: str) -> None:
    """An ``http_config`` setting the notifier does not implement is refused by name,
    never silently dropped (docs/alertmanager-compat.md)."""
    for integration, kind, config in receiver.integrations():
        http = getattr(config, "http_config", None)
        if http is None:
            continue
        wanted = http.unsupported()
        if kind is IntegrationKind.SLACK:
            # slack-sdk takes our headers and SSL context, not an SNI override; with a bot
            # token (opsmesh's extension) the Authorization header is the token's.
            if http.tls_config is not None and http.tls_config.server_name:
                wanted.append("tls_config.server_name")
            if getattr(config, "token", None) is not None:
                auth = ("basic_auth", "authorization", "bearer_token")
                wanted += [name for name in auth if getattr(http, name)]
        if wanted:
            raise ReceiversError(
                f"{where}: receiver {receiver.name!r} {integration}: http_config."
                f"{wanted[0]} is not implemented by opsmesh's notifier for {kind.value} "
                "(see docs/alertmanager-compat.md)"
            )


def _refuse_go_only(configs: dict[str, ReceiverConfig], where: str) -> None:
    for receiver in configs.values():
        for integration, kind, _ in receiver.integrations():
            if kind in GO_TEMPLATES_ONLY:
                raise ReceiversError(
                    f"{where}: receiver {receiver.name!r} {integration}: {kind.value}_configs "
                    "render Alertmanager (Go) templates only; use an Alertmanager "
                    "configuration (with a route) or NOTIFIER_TEMPLATE_LANGUAGE=go"
                )


def template_language(raw: Any, configured: TemplateLanguage | None) -> TemplateLanguage:
    """The configured language, or else: Go for an Alertmanager configuration (a file with
    a ``route``, which Alertmanager requires of every configuration, or ``templates``),
    Jinja2 for opsmesh's own receivers file (``receivers`` alone)."""
    if configured is not None:
        return configured
    if isinstance(raw, dict) and ("route" in raw or "templates" in raw):
        return TemplateLanguage.GO
    return TemplateLanguage.JINJA2


def template_globs(raw: Any, path: str) -> tuple[str, ...]:
    found = raw.get("templates") if isinstance(raw, dict) else None
    if found is None:
        return ()
    if not isinstance(found, list) or not all(isinstance(g, str) for g in found):
        raise ReceiversError(f"{path}: templates: expected a list of file globs")
    base = Path(path).resolve().parent
    return tuple(str(base / g) if not Path(g).is_absolute() else g for g in found)


def load_receivers(
    path: str | None,
    default_webhook_url: str | None,
    language: TemplateLanguage | None = None,
) -> Receivers:
    if not path:
        return receivers_from_text(None, "", default_webhook_url, language)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ReceiversError(f"{path}: {exc}") from None
    return receivers_from_text(text, path, default_webhook_url, language)


def receivers_from_text(
    text: str | None,
    path: str,
    default_webhook_url: str | None,
    language: TemplateLanguage | None = None,
) -> Receivers:
    """The receivers of a file's content (``None``: no file); ``path`` places relative
    ``*_file`` and ``templates:`` paths and names the file in errors. At start and at
    every reload (``notifier.receivers.reload``)."""
    configs: dict[str, ReceiverConfig] = {}
    raw: Any = None
    globs: tuple[str, ...] = ()
    if text is not None:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            # PyYAML quotes the line, which may hold a webhook URL or a routing key.
            raise ReceiversError(f"{path}: not valid YAML: {yaml_error_text(exc)}") from None
        configs = parse_receivers(raw, path, Path(path).resolve().parent)
        globs = template_globs(raw, path)
    chosen = template_language(raw, language)
    if globs and chosen is TemplateLanguage.JINJA2:
        raise ReceiversError(f"{path}: templates: are Alertmanager (Go) template files")
    if chosen is TemplateLanguage.JINJA2:
        _refuse_go_only(configs, path or "receivers")
    if default_webhook_url and "default" not in configs:
        configs["default"] = ReceiverConfig(
            name="default", webhook_configs=[WebhookConfig(url=default_webhook_url)]
        )
    return Receivers(configs, chosen, globs)
