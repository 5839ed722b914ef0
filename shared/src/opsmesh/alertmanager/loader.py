"""One loader for an Alertmanager configuration file, shared by the alert-engine (routes,
inhibition, time intervals) and the notifier (receivers).

It does what Alertmanager's ``config.Load`` does before either service looks at a
section: strict shape (``schema.py``: a misspelt field is an error), ``global`` defaults
applied to every integration, checks of what each integration needs, and refusal of an
integration the notifier does not implement (naming the receiver and the integration).
``*_file`` secrets of the integrations are read here (relative paths from the file's
directory), so each service sees the value; the document kept for ``/api/v2/status``
keeps the file's path instead and masks every secret as Alertmanager does.

Errors name where they are (``receivers[2].webhook_configs[0]``) and never quote the
file: a line may hold a secret.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml
from yarl import URL

from opsmesh.alertmanager import schema
from opsmesh.alertmanager.redaction import redacted_yaml
from opsmesh.send_resolved import SEND_RESOLVED_DEFAULT
from opsmesh.yaml_errors import yaml_error_text

IMPLEMENTED: tuple[str, ...] = ("email", "slack", "pagerduty", "webhook", "opsgenie", "msteams")
# Alertmanager integrations the notifier does not deliver to (docs/alertmanager-compat.md).
NOT_IMPLEMENTED: tuple[str, ...] = (
    "victorops",
    "pushover",
    "sns",
    "telegram",
    "webex",
    "discord",
    "msteamsv2",
    "wechat",
    "jira",
    "rocketchat",
    "mattermost",
    "incidentio",
)

DEFAULT_GLOBAL: dict[str, Any] = {
    "resolve_timeout": "5m",
    "smtp_hello": "localhost",
    "smtp_require_tls": True,
    "pagerduty_url": "https://events.pagerduty.com/v2/enqueue",
    "opsgenie_api_url": "https://api.opsgenie.com/",
}


class AlertmanagerConfigError(ValueError):
    """The file is not a configuration Alertmanager (or opsmesh) would run with."""


class UnimplementedIntegrationError(AlertmanagerConfigError):
    """A valid Alertmanager receiver whose integration the notifier cannot deliver to."""

    def __init__(
        self, receiver: str, integration: str, where: str, written: str | None = None
    ) -> None:
        super().__init__(
            f"{where}: receiver {receiver!r} uses the {integration} integration "
            f"({written or integration + '_configs'}), which opsmesh's notifier does not "
            "implement (implemented: email, slack, pagerduty Events API v2, webhook, "
            "opsgenie, msteams; see docs/alertmanager-compat.md)"
        )
        self.receiver = receiver
        self.integration = integration


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    # The document with global defaults applied and ``*_file`` secrets read into their
    # fields: what the services build from.
    document: dict[str, Any]
    # ``config.original`` of ``/api/v2/status``: defaults applied, secrets masked,
    # secret files named by path.
    original: str


def load_file(path: str | Path, *, require_route: bool = True) -> LoadedConfig:
    where = Path(path)
    try:
        text = where.read_text()
    except OSError as exc:
        raise AlertmanagerConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return load_text(text, base_dir=where.resolve().parent, require_route=require_route)


def load_text(
    text: str, *, base_dir: Path | None = None, require_route: bool = True
) -> LoadedConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AlertmanagerConfigError(f"not valid YAML: {yaml_error_text(exc)}") from None
    return load_document(raw or {}, base_dir=base_dir, require_route=require_route)


def load_document(
    raw: Any, *, base_dir: Path | None = None, require_route: bool = True
) -> LoadedConfig:
    if not isinstance(raw, dict):
        raise AlertmanagerConfigError("the configuration must be a mapping")
    try:
        msgspec.convert(raw, schema.Config)
    except msgspec.ValidationError as exc:
        raise AlertmanagerConfigError(_shape_error(str(exc))) from None
    if require_route and raw.get("route") is None:
        raise AlertmanagerConfigError("no route provided in config")
    glob = {**DEFAULT_GLOBAL, **copy.deepcopy(raw.get("global") or {})}
    _check_global(glob)
    # ``global`` first, as Alertmanager prints it.
    doc = {"global": glob, **{k: copy.deepcopy(v) for k, v in raw.items() if k != "global"}}
    _receivers(doc.get("receivers") or [], glob)
    resolved = copy.deepcopy(doc)
    for i, receiver in enumerate(resolved.get("receivers") or []):
        for kind in IMPLEMENTED:
            for j, config in enumerate(receiver.get(f"{kind}_configs") or []):
                _read_secret_files(kind, config, base_dir, f"receivers[{i}].{kind}_configs[{j}]")
    return LoadedConfig(resolved, redacted_yaml(doc))


def _receivers(receivers: list[dict[str, Any]], glob: dict[str, Any]) -> None:
    seen: set[str] = set()
    for i, receiver in enumerate(receivers):
        name = receiver["name"]
        if not name:
            raise AlertmanagerConfigError(f"receivers[{i}]: missing name in receiver")
        if name in seen:
            raise AlertmanagerConfigError(f"receivers[{i}]: receiver {name!r} is not unique")
        seen.add(name)
        for kind in NOT_IMPLEMENTED:
            if receiver.get(f"{kind}_configs"):
                raise UnimplementedIntegrationError(name, kind, f"receivers[{i}]")
        for kind in IMPLEMENTED:
            for j, config in enumerate(receiver.get(f"{kind}_configs") or []):
                _apply_defaults(kind, config, glob, f"receivers[{i}].{kind}_configs[{j}]")
                if kind == "pagerduty" and not (
                    config.get("routing_key") or config.get("routing_key_file")
                ):
                    raise UnimplementedIntegrationError(
                        name,
                        "PagerDuty Events API v1",
                        f"receivers[{i}].pagerduty_configs[{j}]",
                        "service_key; set routing_key for Events API v2",
                    )


_FIELD = re.compile(r"at `\$\.?(.*)`$")


def _shape_error(message: str) -> str:
    """msgspec's ``... - at `$.receivers[0].webhook_configs[0]``` as ``where: what``."""
    found = _FIELD.search(message)
    what = _FIELD.sub("", message).rstrip(" -")
    what = what.replace("Object contains unknown field", "unknown field")
    if not found:
        return what
    where = found.group(1) or "(top level)"
    return f"{where.replace('global_', 'global')}: {what}"


def _check_global(glob: dict[str, Any]) -> None:
    if glob.get("slack_api_url") and glob.get("slack_api_url_file"):
        raise AlertmanagerConfigError(
            "global: at most one of slack_api_url & slack_api_url_file must be configured"
        )
    if glob.get("opsgenie_api_key") and glob.get("opsgenie_api_key_file"):
        raise AlertmanagerConfigError(
            "global: at most one of opsgenie_api_key & opsgenie_api_key_file must be configured"
        )
    for name in ("slack_api_url", "pagerduty_url", "opsgenie_api_url", "victorops_api_url"):
        if glob.get(name):
            _check_url(glob[name], f"global.{name}", secret=name == "slack_api_url")
    if glob.get("http_config"):
        _check_http_config(glob["http_config"], "global.http_config")


def _check_url(url: str, where: str, *, secret: bool = False) -> None:
    shown = "the URL" if secret else repr(url)
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise AlertmanagerConfigError(f"{where}: {shown} is not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AlertmanagerConfigError(
            f"{where}: {shown} must be an http:// or https:// URL with a host"
        )


def _check_http_config(http: dict[str, Any], where: str) -> None:
    """prometheus/common's ``HTTPClientConfig.Validate``."""
    if http.get("bearer_token") and http.get("bearer_token_file"):
        raise AlertmanagerConfigError(
            f"{where}: at most one of bearer_token & bearer_token_file must be configured"
        )
    basic = http.get("basic_auth") or None
    auth = http.get("authorization") or None
    oauth2 = http.get("oauth2") or None
    bearer = http.get("bearer_token") or http.get("bearer_token_file")
    if sum(1 for part in (basic, auth, oauth2) if part) > 1:
        raise AlertmanagerConfigError(
            f"{where}: at most one of basic_auth, oauth2 & authorization must be configured"
        )
    if basic:
        if basic.get("password") and basic.get("password_file"):
            raise AlertmanagerConfigError(
                f"{where}.basic_auth: at most one of password & password_file must be configured"
            )
        if bearer:
            raise AlertmanagerConfigError(
                f"{where}: at most one of basic_auth, bearer_token & bearer_token_file "
                "must be configured"
            )
    if auth:
        if bearer:
            raise AlertmanagerConfigError(
                f"{where}: authorization is not compatible with bearer_token & bearer_token_file"
            )
        if auth.get("credentials") and auth.get("credentials_file"):
            raise AlertmanagerConfigError(
                f"{where}.authorization: at most one of credentials & credentials_file "
                "must be configured"
            )
        if str(auth.get("type") or "").strip().lower() == "basic":
            raise AlertmanagerConfigError(
                f"{where}.authorization: type Basic is not supported, use basic_auth instead"
            )
    if oauth2 and bearer:
        raise AlertmanagerConfigError(
            f"{where}: at most one of oauth2 & bearer_token & bearer_token_file must be configured"
        )
    if http.get("proxy_url"):
        _check_url(http["proxy_url"], f"{where}.proxy_url")


def _exclusive(config: dict[str, Any], a: str, b: str, where: str) -> None:
    if config.get(a) and config.get(b):
        raise AlertmanagerConfigError(f"{where}: at most one of {a} & {b} must be configured")


def _apply_defaults(kind: str, config: dict[str, Any], glob: dict[str, Any], where: str) -> None:
    """As Alertmanager's ``Config.UnmarshalYAML``: an integration's unset fields take the
    global values, and what is still missing then is an error."""
    config.setdefault("send_resolved", SEND_RESOLVED_DEFAULT[kind])
    if kind != "email" and not config.get("http_config") and glob.get("http_config"):
        config["http_config"] = copy.deepcopy(glob["http_config"])
    if config.get("http_config"):
        _check_http_config(config["http_config"], f"{where}.http_config")
    _KIND_DEFAULTS[kind](config, glob, where)


_EMAIL_GLOBALS = (
    ("smarthost", "smtp_smarthost"),
    ("from", "smtp_from"),
    ("hello", "smtp_hello"),
    ("auth_username", "smtp_auth_username"),
    ("auth_password", "smtp_auth_password"),
    ("auth_password_file", "smtp_auth_password_file"),
    ("auth_secret", "smtp_auth_secret"),
    ("auth_identity", "smtp_auth_identity"),
)


def _email(config: dict[str, Any], glob: dict[str, Any], where: str) -> None:
    if not config.get("to"):
        raise AlertmanagerConfigError(f"{where}: missing to address in email config")
    _exclusive(config, "auth_password", "auth_password_file", where)
    lowered = [h.lower() for h in config.get("headers") or {}]
    if len(set(lowered)) != len(lowered):
        raise AlertmanagerConfigError(f"{where}.headers: duplicate header")
    # The password and its file are one setting: the global pair applies only when the
    # integration sets neither.
    has_password = config.get("auth_password") or config.get("auth_password_file")
    for name, key in _EMAIL_GLOBALS:
        if name.startswith("auth_password") and has_password:
            continue
        if not config.get(name) and glob.get(key):
            config[name] = glob[key]
    if config.get("require_tls") is None:
        config["require_tls"] = glob["smtp_require_tls"]
    if not config.get("smarthost"):
        raise AlertmanagerConfigError(f"{where}: no global SMTP smarthost set")
    if not config.get("from"):
        raise AlertmanagerConfigError(f"{where}: no global SMTP from set")
    host, _, port = str(config["smarthost"]).rpartition(":")
    if not host.strip("[]") or not port:
        raise AlertmanagerConfigError(f"{where}.smarthost: address is not host:port")


def _slack(config: dict[str, Any], glob: dict[str, Any], where: str) -> None:
    _exclusive(config, "api_url", "api_url_file", where)
    if not config.get("api_url") and not config.get("api_url_file"):
        if glob.get("slack_api_url"):
            config["api_url"] = glob["slack_api_url"]
        elif glob.get("slack_api_url_file"):
            config["api_url_file"] = glob["slack_api_url_file"]
        elif not config.get("token"):
            raise AlertmanagerConfigError(
                f"{where}: no global Slack API URL set either inline or in a file"
            )
    if config.get("api_url"):
        _check_url(config["api_url"], f"{where}.api_url", secret=True)


def _pagerduty(config: dict[str, Any], glob: dict[str, Any], where: str) -> None:
    _exclusive(config, "routing_key", "routing_key_file", where)
    _exclusive(config, "service_key", "service_key_file", where)
    keys = ("routing_key", "routing_key_file", "service_key", "service_key_file")
    if not any(config.get(k) for k in keys):
        raise AlertmanagerConfigError(
            f"{where}: missing service or routing key in PagerDuty config"
        )
    config.setdefault("url", glob["pagerduty_url"])
    _check_url(config["url"], f"{where}.url")


def _webhook(config: dict[str, Any], _glob: dict[str, Any], where: str) -> None:
    _exclusive(config, "url", "url_file", where)
    if not config.get("url") and not config.get("url_file"):
        raise AlertmanagerConfigError(f"{where}: one of url or url_file must be configured")
    if config.get("url"):
        _check_url(config["url"], f"{where}.url", secret=True)
    if int(config.get("max_alerts") or 0) < 0:
        raise AlertmanagerConfigError(f"{where}.max_alerts: must not be negative")


_OPSGENIE_TYPES = re.compile(r"^(team|teams|user|escalation|schedule)$")


def _opsgenie(config: dict[str, Any], glob: dict[str, Any], where: str) -> None:
    _exclusive(config, "api_key", "api_key_file", where)
    for k, responder in enumerate(config.get("responders") or []):
        place = f"{where}.responders[{k}]"
        if not any(responder.get(name) for name in ("id", "username", "name")):
            raise AlertmanagerConfigError(
                f"{place}: a responder needs at least one of id, username or name"
            )
        kind = str(responder.get("type") or "")
        # Checked in lower case, sent as written (as Alertmanager does); a templated type
        # is checked when it renders (by Opsgenie).
        if "{{" not in kind and not _OPSGENIE_TYPES.match(kind.lower()):
            raise AlertmanagerConfigError(
                f"{place}.type: {kind!r} is not one of team, teams, user, escalation, schedule"
            )
    url = config.get("api_url") or glob.get("opsgenie_api_url")
    if not url:
        raise AlertmanagerConfigError(f"{where}: no global OpsGenie URL set")
    _check_url(url, f"{where}.api_url")
    # The API's paths are appended to it (``v2/alerts``), as Alertmanager appends them.
    config["api_url"] = url if url.endswith("/") else url + "/"
    if not config.get("api_key") and not config.get("api_key_file"):
        if glob.get("opsgenie_api_key"):
            config["api_key"] = glob["opsgenie_api_key"]
        elif glob.get("opsgenie_api_key_file"):
            config["api_key_file"] = glob["opsgenie_api_key_file"]
        else:
            raise AlertmanagerConfigError(
                f"{where}: no global OpsGenie API Key set either inline or in a file"
            )
    for name, value in list((config.get("details") or {}).items()):
        config["details"][name] = str(value)


def _msteams(config: dict[str, Any], _glob: dict[str, Any], where: str) -> None:
    _exclusive(config, "webhook_url", "webhook_url_file", where)
    if not config.get("webhook_url") and not config.get("webhook_url_file"):
        raise AlertmanagerConfigError(
            f"{where}: one of webhook_url or webhook_url_file must be configured"
        )
    if config.get("webhook_url"):
        _check_url(config["webhook_url"], f"{where}.webhook_url", secret=True)


_KIND_DEFAULTS = {
    "email": _email,
    "slack": _slack,
    "pagerduty": _pagerduty,
    "webhook": _webhook,
    "opsgenie": _opsgenie,
    "msteams": _msteams,
}


_SECRET_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "email": (("auth_password_file", "auth_password"),),
    "slack": (("api_url_file", "api_url"),),
    "pagerduty": (("routing_key_file", "routing_key"), ("service_key_file", "service_key")),
    "webhook": (("url_file", "url"),),
    "opsgenie": (("api_key_file", "api_key"),),
    "msteams": (("webhook_url_file", "webhook_url"),),
}


def _read_secret_files(
    kind: str, config: dict[str, Any], base_dir: Path | None, where: str
) -> None:
    for file_field, value_field in _SECRET_FILES[kind]:
        name = config.pop(file_field, None)
        if not name:
            continue
        path = Path(name)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            value = path.read_text().strip()
        except OSError as exc:
            # The path is not a secret; its content is.
            raise AlertmanagerConfigError(
                f"{where}.{file_field}: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        if not value:
            raise AlertmanagerConfigError(f"{where}.{file_field}: {str(path)!r} is empty")
        if kind in ("slack", "webhook", "msteams"):
            _check_url(value, f"{where}.{file_field}", secret=True)
        config[value_field] = value
    if config.get("http_config"):
        _read_http_files(config["http_config"], base_dir, f"{where}.http_config")


# prometheus/common's HTTPClientConfig: (block, file field, value field) of its secrets.
_HTTP_SECRET_FILES = (
    ("basic_auth", "password_file", "password"),
    ("basic_auth", "username_file", "username"),
    ("authorization", "credentials_file", "credentials"),
    ("", "bearer_token_file", "bearer_token"),
)


def _absolute(name: str, base_dir: Path | None) -> Path:
    path = Path(name)
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def _read_http_files(http: dict[str, Any], base_dir: Path | None, where: str) -> None:
    """The credentials files of an ``http_config`` read into their fields; TLS files made
    absolute (relative ones are taken from the configuration's directory)."""
    for block, file_field, value_field in _HTTP_SECRET_FILES:
        holder = http.get(block) if block else http
        if not isinstance(holder, dict) or not holder.get(file_field):
            continue
        path = _absolute(holder.pop(file_field), base_dir)
        try:
            holder[value_field] = path.read_text().strip()
        except OSError as exc:
            place = f"{where}.{block}.{file_field}" if block else f"{where}.{file_field}"
            raise AlertmanagerConfigError(
                f"{place}: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
    tls = http.get("tls_config")
    if isinstance(tls, dict):
        for name in ("ca_file", "cert_file", "key_file"):
            if tls.get(name):
                tls[name] = str(_absolute(tls[name], base_dir))
