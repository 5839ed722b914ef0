"""The project's runbooks as pages: alert notifications link to them
(``OPSMESH_RUNBOOK_BASE_URL`` points at the console's ``/runbooks``), so the link in a page
at 3 a.m. opens the procedure next to the alerts it is about."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

# A runbook is named by its file (``high-error-rate.md``); nothing else reaches the disk.
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}\.md$")
# Runbooks are the project's own text, but rendering never passes raw HTML through.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
INDEX = "README.md"


@dataclass(frozen=True, slots=True)
class Runbook:
    name: str
    title: str
    html: str


def _title(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return name.removesuffix(".md")


class Runbooks:
    """Reads ``directory`` per request: a runbook edited on disk is served as it is now."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def names(self) -> list[str]:
        if not self._directory.is_dir():
            return []
        return sorted(
            p.name for p in self._directory.iterdir() if _NAME.match(p.name) and p.name != INDEX
        )

    def page(self, name: str) -> Runbook | None:
        """The runbook called ``name``, or None when there is no such runbook."""
        if not _NAME.match(name):
            return None
        path = self._directory / name
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
        return Runbook(name, _title(text, name), _MARKDOWN.render(text))

    def listing(self) -> list[Runbook]:
        return [r for r in (self.page(n) for n in self.names()) if r is not None]
