"""What Alertmanager renders for each integration, with its defaults, and the data it
renders them over.

The defaults are Alertmanager's (``config/notifiers.go``, ``notify/pagerduty/config.go``
of the version the renderer is built with): a field not set in the configuration renders
``{{ template "slack.default.title" . }}`` and so on, from Alertmanager's own
``default.tmpl``. The data is the notification's alerts; the renderer hands them to
Alertmanager's ``Template.Data``, which derives the common labels and annotations, the
fingerprints, the group status and the zero ``EndsAt`` of firing alerts, and quotes the
receiver name as Alertmanager does (``regexp.QuoteMeta``).
"""

from __future__ import annotations

from typing import Any

from notifier.amtemplate.renderer import Field
from notifier.core.webhook_payload import AM_REASONS, rfc3339
from notifier.receivers.config import (
    EmailConfig,
    MSTeamsConfig,
    OpsGenieConfig,
    PagerDutyConfig,
    SlackConfig,
)
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested
from opsmesh.labels import common_pairs

SLACK_DEFAULTS = {
    "color": '{{ template "slack.default.color" . }}',
    "username": '{{ template "slack.default.username" . }}',
    "title": '{{ template "slack.default.title" . }}',
    "title_link": '{{ template "slack.default.titlelink" . }}',
    "icon_emoji": '{{ template "slack.default.iconemoji" . }}',
    "icon_url": '{{ template "slack.default.iconurl" . }}',
    "pretext": '{{ template "slack.default.pretext" . }}',
    "text": '{{ template "slack.default.text" . }}',
    "fallback": '{{ template "slack.default.fallback" . }}',
    "callback_id": '{{ template "slack.default.callbackid" . }}',
    "footer": '{{ template "slack.default.footer" . }}',
    "image_url": "",
    "thumb_url": "",
    "message_text": "",
}
EMAIL_DEFAULT_HTML = '{{ template "email.default.html" . }}'
EMAIL_DEFAULT_SUBJECT = '{{ template "email.default.subject" . }}'
PAGERDUTY_DEFAULTS = {
    "description": '{{ template "pagerduty.default.description" .}}',
    "client": '{{ template "pagerduty.default.client" . }}',
    "client_url": '{{ template "pagerduty.default.clientURL" . }}',
}
PAGERDUTY_DEFAULT_DETAILS = {
    "firing": "{{ .Alerts.Firing | toJson }}",
    "resolved": "{{ .Alerts.Resolved | toJson }}",
    "num_firing": "{{ .Alerts.Firing | len }}",
    "num_resolved": "{{ .Alerts.Resolved | len }}",
}
OPSGENIE_DEFAULTS = {
    "message": '{{ template "opsgenie.default.message" . }}',
    "description": '{{ template "opsgenie.default.description" . }}',
    "source": '{{ template "opsgenie.default.source" . }}',
}
MSTEAMS_DEFAULTS = {
    "title": '{{ template "msteams.default.title" . }}',
    "summary": '{{ template "msteams.default.summary" . }}',
    "text": '{{ template "msteams.default.text" . }}',
}
# Alertmanager's MessageCard colours (``notify/msteams``): firing, resolved.
MSTEAMS_COLOR_FIRING = "8C1A1A"
MSTEAMS_COLOR_RESOLVED = "2DC72D"
TRUNCATION_MARKER = "…"
SLACK_TITLE_MAX_RUNES = 1024
PAGERDUTY_SUMMARY_MAX_RUNES = 1024
OPSGENIE_MESSAGE_MAX_RUNES = 130  # the Alert API's limit on ``message``


def truncate_in_runes(text: str, limit: int) -> str:
    """Alertmanager's ``notify.TruncateInRunes``."""
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    return text[: limit - 1] + TRUNCATION_MARKER


def template_data(request: NotificationRequested) -> dict[str, Any]:
    """The notification as the renderer takes it (see the module docstring)."""
    return {
        "receiver": request.receiver,
        "notificationReason": AM_REASONS.get(request.reason, "unknown"),
        "groupLabels": dict(request.group_labels),
        "externalURL": request.external_url,
        "alerts": [
            {
                "status": alert.status.value,
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": rfc3339(alert.ends_at if alert.status is AlertStatus.RESOLVED else None),
                "generatorURL": alert.generator_url,
            }
            for alert in request.alerts
        ],
    }


def _or(value: str | None, default: str) -> str:
    return default if value is None else value


def slack_fields(config: SlackConfig) -> list[Field]:
    values = {name: _or(getattr(config, name), default) for name, default in SLACK_DEFAULTS.items()}
    if config.channel is not None:
        values["channel"] = config.channel
    out = [Field(name, text) for name, text in values.items()]
    for index, item in enumerate(config.fields):
        out.append(Field(f"fields.{index}.title", item.title))
        out.append(Field(f"fields.{index}.value", item.value))
    for index, action in enumerate(config.actions):
        for name in ("type", "text", "url", "style", "name", "value"):
            out.append(Field(f"actions.{index}.{name}", getattr(action, name)))
        if action.confirm is not None:
            for name in ("title", "text", "ok_text", "dismiss_text"):
                out.append(Field(f"actions.{index}.confirm.{name}", getattr(action.confirm, name)))
    return out


def slack_message(config: SlackConfig, rendered: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's Slack request body (one attachment) from the rendered fields."""
    attachment: dict[str, Any] = {
        "title": truncate_in_runes(rendered["title"], SLACK_TITLE_MAX_RUNES),
        "title_link": rendered["title_link"],
        "pretext": rendered["pretext"],
        "text": rendered["text"],
        "fallback": rendered["fallback"],
        "callback_id": rendered["callback_id"],
        "image_url": rendered["image_url"],
        "thumb_url": rendered["thumb_url"],
        "footer": rendered["footer"],
        "color": rendered["color"],
        "mrkdwn_in": list(config.mrkdwn_in) or ["fallback", "pretext", "text"],
    }
    if config.fields:
        attachment["fields"] = [
            {
                k: v
                for k, v in (
                    ("title", rendered[f"fields.{i}.title"]),
                    ("value", rendered[f"fields.{i}.value"]),
                )
                if v
            }
            | {"short": item.short if item.short is not None else config.short_fields}
            for i, item in enumerate(config.fields)
        ]
    if config.actions:
        actions = []
        for i, action in enumerate(config.actions):
            out = {
                name: rendered[f"actions.{i}.{name}"]
                for name in ("type", "text", "url", "style", "name", "value")
            }
            if action.confirm is not None:
                out["confirm"] = {
                    name: rendered[f"actions.{i}.confirm.{name}"]
                    for name in ("title", "text", "ok_text", "dismiss_text")
                }
            if "confirm" in out:
                out["confirm"] = {k: v for k, v in out["confirm"].items() if v}
            actions.append({k: v for k, v in out.items() if v})
        attachment["actions"] = actions
    # Alertmanager's JSON tags omit empty strings.
    message: dict[str, Any] = {
        "channel": rendered.get("channel", ""),
        "username": rendered["username"],
        "icon_emoji": rendered["icon_emoji"],
        "icon_url": rendered["icon_url"],
        "link_names": config.link_names,
        "text": rendered["message_text"],
    }
    message = {k: v for k, v in message.items() if v}
    # These four are sent even when empty (no omitempty in Alertmanager's JSON tags).
    always = {"text", "fallback", "callback_id", "footer"}
    message["attachments"] = [
        {k: v for k, v in attachment.items() if k in always or v not in ("", None, [])}
    ]
    return message


def email_fields(config: EmailConfig) -> list[Field]:
    headers = dict(config.headers)
    headers.setdefault("Subject", EMAIL_DEFAULT_SUBJECT)
    headers.setdefault("To", ", ".join(config.to))
    headers.setdefault("From", config.from_)
    out = [Field(f"header.{name}", text) for name, text in headers.items()]
    out.append(Field("html", _or(config.html, EMAIL_DEFAULT_HTML), kind="html"))
    out.append(Field("text", _or(config.text, "")))
    return out


def pagerduty_fields(config: PagerDutyConfig) -> list[Field]:
    client = _or(config.client, PAGERDUTY_DEFAULTS["client"])
    values = {
        "description": _or(config.description, PAGERDUTY_DEFAULTS["description"]),
        "client": client,
        "client_url": _or(config.client_url, PAGERDUTY_DEFAULTS["client_url"]),
        # Alertmanager: an unset source is the client's template.
        "source": config.source if config.source else client,
        "severity": config.severity or "error",
        "class": config.class_ or "",
        "component": config.component or "",
        "group": config.group or "",
    }
    out = [Field(name, text) for name, text in values.items()]
    details = {**PAGERDUTY_DEFAULT_DETAILS, **(config.details or {})}
    out.extend(Field(f"details.{name}", value, kind="deep") for name, value in details.items())
    for index, link in enumerate(config.links):
        out.append(Field(f"links.{index}.href", link.href))
        out.append(Field(f"links.{index}.text", link.text))
    for index, image in enumerate(config.images):
        out.append(Field(f"images.{index}.src", image.src))
        out.append(Field(f"images.{index}.alt", image.alt))
        out.append(Field(f"images.{index}.href", image.href))
    return out


def prefixed(rendered: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in rendered.items() if k.startswith(prefix)}


def opsgenie_fields(config: OpsGenieConfig) -> list[Field]:
    """What Alertmanager renders for an Opsgenie alert (``notify/opsgenie``): every field
    of the configuration is a template, the API key included (rendered only when it holds
    a template action: a plain key renders as itself)."""
    out = [
        Field(name, _or(getattr(config, name), default))
        for name, default in OPSGENIE_DEFAULTS.items()
    ]
    for name in ("entity", "actions", "tags", "note", "priority"):
        out.append(Field(name, getattr(config, name)))
    out.extend(Field(f"details.{name}", value) for name, value in config.details.items())
    for index, responder in enumerate(config.responders):
        for name in ("id", "name", "username", "type"):
            out.append(Field(f"responders.{index}.{name}", getattr(responder, name)))
    api_key = config.api_key.get_secret_value()
    if "{{" in api_key:
        out.append(Field("api_key", api_key))
    return out


def _safe_split(text: str) -> list[str]:
    """Alertmanager's ``safeSplit``: comma-separated, empty parts dropped (not trimmed)."""
    return [part for part in text.strip().split(",") if part]


def opsgenie_responders(config: OpsGenieConfig, rendered: dict[str, Any]) -> list[dict[str, str]]:
    """Rendered responders: all-empty ones dropped, a ``teams`` one split into one team
    per comma-separated name. Alertmanager renders each split name once more, compiling
    text that may come from a label as a template; here it is rendered once (labels are
    data), which differs only for a name that itself holds ``{{``."""
    out: list[dict[str, str]] = []
    for index in range(len(config.responders)):
        values = {
            name: str(rendered[f"responders.{index}.{name}"])
            for name in ("id", "name", "username", "type")
        }
        if not any(values.values()):
            continue
        if values["type"] == "teams":
            out.extend({"name": team, "type": "team"} for team in _safe_split(values["name"]))
            continue
        # JSON tags: id, name and username are omitted when empty; type never is.
        out.append({k: v for k, v in values.items() if v or k == "type"})
    return out


def opsgenie_create(
    config: OpsGenieConfig, request: NotificationRequested, rendered: dict[str, Any], alias: str
) -> dict[str, Any]:
    """The Alert API's create request, as Alertmanager builds it (empty optional fields
    left out as its JSON tags leave them out)."""
    details = {
        **common_pairs([a.labels for a in request.alerts]),
        **prefixed(rendered, "details."),
    }
    body: dict[str, Any] = {
        "alias": alias,
        "message": truncate_in_runes(str(rendered["message"]), OPSGENIE_MESSAGE_MAX_RUNES),
        "description": rendered["description"],
        "details": details,
        "source": rendered["source"],
        "responders": opsgenie_responders(config, rendered),
        "tags": _safe_split(str(rendered["tags"])),
        "note": rendered["note"],
        "priority": rendered["priority"],
        "entity": rendered["entity"],
        "actions": _safe_split(str(rendered["actions"])),
    }
    always = {"alias", "message", "details", "source"}
    return {k: v for k, v in body.items() if k in always or v not in ("", [], None)}


def msteams_fields(config: MSTeamsConfig) -> list[Field]:
    return [
        Field(name, _or(getattr(config, name), default))
        for name, default in MSTEAMS_DEFAULTS.items()
    ]


def msteams_card(request: NotificationRequested, rendered: dict[str, Any]) -> dict[str, Any]:
    """Alertmanager's MessageCard: red while any alert fires, green once all resolved."""
    firing = any(a.status is AlertStatus.FIRING for a in request.alerts)
    return {
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": rendered["title"],
        "summary": rendered["summary"],
        "text": rendered["text"],
        "themeColor": MSTEAMS_COLOR_FIRING if firing else MSTEAMS_COLOR_RESOLVED,
    }
