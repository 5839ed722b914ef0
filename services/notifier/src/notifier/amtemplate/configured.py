"""The Go renderer and Alertmanager's templates as the settings configure them: for the
service (``notifier.bootstrap``) and for ``opsmesh notify`` (``notifier.cli``)."""

from __future__ import annotations

from notifier.amtemplate import AlertmanagerTemplates, GoRenderer
from notifier.amtemplate.build import find as find_renderer
from notifier.core.rendering import BUDGET
from notifier.receivers.config import Receivers, TemplateLanguage
from notifier.settings import NotifierSettings


class Renderer:
    """The Go renderer of Alertmanager templates, made when first needed (at start, or
    by a reload that switches to Alertmanager's templates); a missing renderer binary
    is an error that says how to build it."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self.made: GoRenderer | None = None

    def __call__(self) -> GoRenderer:
        if self.made is None:
            self.made = GoRenderer(
                find_renderer(self._settings.amtemplate_bin),
                workers=self._settings.amtemplate_workers,
                max_seconds=BUDGET.max_seconds,
                max_output=self._settings.amtemplate_max_output_bytes,
                max_memory_mb=self._settings.amtemplate_max_memory_mb,
            )
        return self.made

    async def close(self) -> None:
        """Stops the renderer's processes, if it was ever made."""
        if self.made is not None:
            await self.made.close()


def alertmanager_templates(
    settings: NotifierSettings, receivers: Receivers, renderer: Renderer | None = None
) -> AlertmanagerTemplates | None:
    """Alertmanager's templates, when the receivers' templates are Go templates."""
    if receivers.language is not TemplateLanguage.GO:
        return None
    return AlertmanagerTemplates((renderer or Renderer(settings))(), receivers.templates)
