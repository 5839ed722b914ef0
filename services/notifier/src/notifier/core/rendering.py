"""Rendering notification text: default templates per channel, user templates sandboxed.

Every template, default or user-written, renders in ``BoundedSandbox`` (no Python
internals; output size, steps and time bounded by ``BUDGET`` while rendering). Alert
labels and annotations are input from outside, so HTML templates autoescape; text
templates do not (they would show ``&lt;``). Labels and annotations are data: they are
passed to templates as values and never compiled as templates themselves.

Any failure of a template, its budget included, is a ``RenderError``: the same request
fails the same way every time, so channels report it as a non-retryable failure and the
request is dead-lettered with the reason. Channels render in ``render_off_loop``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import StrictUndefined, Template, Undefined
from jinja2.exceptions import TemplateError

from notifier.core.webhook_payload import webhook_payload
from opsmesh.events.notifications import NotificationRequested
from opsmesh.templating import BoundedSandbox, Budget

MAX_OUTPUT = 200_000  # characters of one rendered template
BUDGET = Budget(max_size=MAX_OUTPUT, max_steps=1_000_000, max_seconds=2.0)


class RenderError(ValueError):
    """A template failed to compile or render; the notification cannot be built."""


class _Alerts(list[dict[str, Any]]):
    """The alerts list with Alertmanager's ``.firing`` / ``.resolved`` views."""

    @property
    def firing(self) -> list[dict[str, Any]]:
        return [a for a in self if a["status"] == "firing"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        return [a for a in self if a["status"] == "resolved"]


def template_data(request: NotificationRequested) -> dict[str, Any]:
    """Alertmanager's template data (the webhook payload's fields), so existing
    templates' variable names work."""
    data = webhook_payload(request)
    data["alerts"] = _Alerts(data["alerts"])
    return data


def _environment(*, html: bool, strict: bool) -> BoundedSandbox:
    return BoundedSandbox(
        budget=BUDGET,
        autoescape=html,
        undefined=StrictUndefined if strict else Undefined,
        trim_blocks=False,
        keep_trailing_newline=False,
    )


_TEXT = _environment(html=False, strict=False)
_HTML = _environment(html=True, strict=False)


@lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> Template:
    env = _HTML if html else _TEXT
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise RenderError(f"template does not compile: {exc}") from None
    except (RecursionError, MemoryError) as exc:  # absurdly nested source
        raise RenderError(f"template does not compile: {type(exc).__name__}") from None


def default_template(name: str) -> str:
    return resources.files("notifier.templates").joinpath(name).read_text()


def render(source: str, data: dict[str, Any], *, html: bool = False) -> str:
    template = _compile(source, html)
    try:
        out = template.render(data)
    except TemplateError as exc:
        raise RenderError(f"template failed: {exc}") from None
    except Exception as exc:
        # 1/0, 'a' + 1, a MemoryError: the template's fault, and deterministic.
        raise RenderError(f"template failed: {type(exc).__name__}: {exc}") from None
    if len(out) > MAX_OUTPUT:
        raise RenderError(f"rendered {len(out)} characters, above {MAX_OUTPUT}")
    return out


def render_named(
    user: str | None, default_name: str, data: dict[str, Any], *, html: bool = False
) -> str:
    return render(user if user is not None else default_template(default_name), data, html=html)
