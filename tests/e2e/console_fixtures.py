"""The console as a process beside the e2e mesh, for the console's seam and browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from opsmesh_dev.tools.mesh import CONSOLE, Mesh


@pytest.fixture(scope="module")
def console(mesh: Mesh) -> Iterator[str]:
    """The console's URL; it reads the mesh's services at their ports."""
    mesh.start([CONSOLE.name])
    try:
        yield mesh.running[CONSOLE.name].url
    finally:
        mesh.stop(CONSOLE.name)
