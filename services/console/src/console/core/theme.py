"""The console's theme: the system's (light or dark as the browser says), or one chosen.

The choice lives in a cookie the server reads, so the first paint is already right and no
script is needed (the console's Content-Security-Policy allows no inline script).
"""

from __future__ import annotations

import enum


class Theme(enum.StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @property
    def color_scheme(self) -> str:
        """The ``color-scheme`` the page declares: form controls and scrollbars follow it."""
        return "light dark" if self is Theme.SYSTEM else self.value


def theme_of(cookie: str | None) -> Theme:
    """The remembered theme; anything unknown (an old or forged cookie) is the system's."""
    try:
        return Theme(cookie or Theme.SYSTEM)
    except ValueError:
        return Theme.SYSTEM
