"""Label and annotation templates, rendered in a sandboxed Jinja2 environment.

Templates see ``labels`` (the alert's labels) and ``value``. The sandbox blocks attribute
tricks that reach Python internals and bounds what one render may build, loop over and
spend (``BUDGET``); a template that fails, or goes past its budget, renders its error
instead of dropping the alert. Rendering is synchronous here (a pure core); the evaluate
stage runs evaluation in the render threads, off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateError

from opsmesh.templating import BoundedSandbox, Budget

# Labels and annotations are short: a tighter budget than notification text, since
# renders run per alert on every evaluation (under the engine's lock).
BUDGET = Budget(max_size=65_536, max_steps=100_000, max_seconds=0.25)
_env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, budget=BUDGET)
_MAX_OUTPUT = 4096


@lru_cache(maxsize=4096)
def _compile(source: str) -> Template:
    return _env.from_string(source)


def check_syntax(source: str) -> None:
    """Raise ``jinja2.TemplateSyntaxError`` if ``source`` does not compile.

    Rule files are checked at load (``opsmesh rules check``) so a typo is reported to its
    author with its location, not rendered as an error into a page at 3 a.m.
    """
    if "{" in source:
        _compile(source)


def render(source: str, labels: Mapping[str, str], value: float | None) -> str:
    if "{" not in source:
        return source
    try:
        out = str(_compile(source).render(labels=dict(labels), value=value))
    except TemplateError as exc:
        return f"<template error: {exc}>"
    except Exception as exc:
        # A runtime error in a rule's template (1/0, 'a' + 1) is the rule author's
        # mistake; it must not stop evaluation or drop the alert.
        return f"<template error: {type(exc).__name__}: {exc}>"
    return out[:_MAX_OUTPUT]


def render_all(
    templates: Mapping[str, str], labels: Mapping[str, str], value: float | None
) -> dict[str, str]:
    return {key: render(text, labels, value) for key, text in templates.items()}
