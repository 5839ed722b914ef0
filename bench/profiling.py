"""``--profile DIR`` for the benchmarks that run services as processes: ``py-spy record``
on each chosen service, raw collapsed stacks written to ``DIR/<name>.txt`` on stop."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path

from opsmesh_dev.tools.mesh import Mesh


def start_profilers(
    mesh: Mesh, out: Path | None, names: Iterable[str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """One profiler per running service (or per one of ``names``); none without ``out``."""
    if out is None:
        return []
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on PATH (uv tool install py-spy)")
    out.mkdir(parents=True, exist_ok=True)
    chosen = set(names) if names is not None else set(mesh.running)
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(service.process.pid),
                "--format",
                "raw",
                "--rate",
                "200",
                "--output",
                str(out / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, service in mesh.running.items()
        if name in chosen
    ]


def stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT makes py-spy write its output."""
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(timeout=30)
