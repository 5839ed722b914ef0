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
from notifier.receivers import EmailConfig, PagerDutyConfig, SlackConfig
from opsmesh.events.alerts import AlertStatus
from opsmesh.events.notifications import NotificationRequested

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
TRUNCATION_MARKER = "…"
SLACK_TITLE_MAX_RUNES = 1024
PAGERDUTY_SUMMARY_MAX_RUNES = 1024


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
