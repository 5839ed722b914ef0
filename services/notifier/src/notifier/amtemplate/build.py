"""Building and finding ``opsmesh-amtemplate``, the Go renderer of Alertmanager templates.

The renderer's Go source ships inside this package (``renderer/``); ``go build`` turns it
into a binary cached under ``~/.cache/opsmesh/bin`` and named after a digest of that
source, so a changed renderer is rebuilt and an unchanged one never is. ``make deps``
builds it (``python -m notifier.amtemplate.build``); ``NOTIFIER_AMTEMPLATE_BIN`` points
the notifier at a binary built elsewhere (a compose image, a package).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

BINARY = "opsmesh-amtemplate"
_SOURCES = ("go.mod", "go.sum", "main.go")
# Where Go is installed on this project's machines when it is not on PATH.
_GO_FALLBACKS = ("/usr/local/go/bin/go",)


class RendererUnavailable(RuntimeError):
    """The renderer binary is missing and cannot be built here; the message says how."""


def source_dir() -> Path:
    return Path(str(resources.files("notifier.amtemplate").joinpath("renderer")))


def source_digest() -> str:
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (source_dir() / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opsmesh" / "bin"


def default_binary() -> Path:
    return cache_dir() / f"{BINARY}-{source_digest()}"


def go_command() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    return next((path for path in _GO_FALLBACKS if os.access(path, os.X_OK)), None)


def build(target: Path | None = None) -> Path:
    """Build the renderer (if its binary is not there yet) and return its path."""
    target = target or default_binary()
    if target.exists():
        return target
    go = go_command()
    if go is None:
        raise RendererUnavailable(
            f"{BINARY} is not built and Go is not installed: install Go 1.26 or newer and run "
            "`make deps`, or set NOTIFIER_AMTEMPLATE_BIN to a built renderer"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built into a temporary name and renamed, so a concurrent build or an interrupted one
    # never leaves a half-written binary under the final name.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / BINARY
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=source_dir(),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RendererUnavailable(
                f"building {BINARY} failed (go build, exit {result.returncode}): "
                f"{result.stderr.strip()[-2000:]}"
            )
        partial.replace(target)
    return target


def find(configured: str | None) -> Path:
    """The binary to run: the configured one, or the built one; never builds."""
    if configured:
        path = Path(configured)
        if not os.access(path, os.X_OK):
            raise RendererUnavailable(f"NOTIFIER_AMTEMPLATE_BIN={configured}: not an executable")
        return path
    path = default_binary()
    if not path.exists():
        raise RendererUnavailable(
            f"{BINARY} is not built ({path} is missing): run `make deps` (or `uv run python -m "
            "notifier.amtemplate.build`; it needs Go 1.26), or set NOTIFIER_AMTEMPLATE_BIN"
        )
    return path


def main() -> int:
    try:
        path = build()
    except RendererUnavailable as exc:
        print(f"[amtemplate] {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
