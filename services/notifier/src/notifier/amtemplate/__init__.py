"""Alertmanager's notification templates, rendered by Alertmanager's own code.

A receiver configured in Alertmanager's format renders its Slack, email and PagerDuty
fields as Alertmanager does: Go ``text/template`` (``html/template`` for email bodies)
over Alertmanager's data model, with Alertmanager's functions, its ``default.tmpl`` and
``email.tmpl``, and the configuration's ``templates:`` files.

Why a Go process and not a Python re-implementation: fidelity is exact by construction
(the same ``template`` package, the same Go ``fmt``, ``regexp``, time layouts and
zones, map printing, and above all ``html/template``'s contextual escaping, which email
bodies go through and which no Python library reproduces); no maintained Python library
implements Go templates (the PyPI packages that exist wrap Go through cgo in-process,
without Alertmanager's functions or a way to stop a runaway render); and a separate
process is the sandbox issue 10 asks for: it can be killed at its deadline and limits its
own memory, where a Python thread can be neither stopped nor bounded. The cost is a build
step (``go build``, part of ``make deps``; Go 1.26) and a pipe round trip per
notification (``bench/templates.py``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import Any

from notifier.amtemplate.messages import template_data
from notifier.amtemplate.renderer import Field, GoRenderer, TemplateError, TemplateSet
from notifier.core.rendering import RenderError
from opsmesh.events.notifications import NotificationRequested

__all__ = ["AlertmanagerTemplates", "Field", "GoRenderer", "TemplateError", "TemplateSet"]

_generation = itertools.count(1)


class AlertmanagerTemplates:
    """The templates of one loaded configuration: defaults plus its ``templates:`` globs.

    Template files are read when the set first loads in a renderer process (Alertmanager
    reads them when it loads its configuration); a new configuration makes a new set."""

    def __init__(self, renderer: GoRenderer, globs: Sequence[str] = ()) -> None:
        self.renderer = renderer
        digest = hashlib.sha256("\0".join(globs).encode()).hexdigest()[:16]
        self.set = TemplateSet(key=f"{digest}-{next(_generation)}", patterns=tuple(globs))

    async def check(self) -> None:
        """Load the set now: a template file that does not parse is an error at start."""
        await self.renderer.check(self.set)

    async def render(
        self, request: NotificationRequested, fields: Sequence[Field]
    ) -> dict[str, Any]:
        try:
            return await self.renderer.render(self.set, template_data(request), fields)
        except TemplateError as exc:
            raise RenderError(str(exc)) from None
