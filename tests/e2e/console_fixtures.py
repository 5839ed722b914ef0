"""The console as a process beside the e2e mesh, and the browser that drives it, for the
console's seam and browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsmesh_dev.tools.mesh import CONSOLE, Mesh

# Debian's Chromium, driven by Playwright; no browser of Playwright's own is downloaded.
CHROMIUM = "/usr/bin/chromium"
# Headless, and without the background networking (updates, sync) that reaches for
# outside hosts at start, which a closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def console(mesh: Mesh) -> Iterator[str]:
    """The console's URL; it reads the mesh's services at their ports."""
    mesh.start([CONSOLE.name])
    try:
        yield mesh.running[CONSOLE.name].url
    finally:
        mesh.stop(CONSOLE.name)
