"""What a second terminal needs while ``opsmesh up`` runs: a write token that stays the
same for a work directory (so scripts and amtool configs written once keep working), and
an env file with the run's addresses and that token, to ``source``."""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Mapping
from pathlib import Path

TOKEN_FILE = "api-token"  # noqa: S105 - the file's name, not a secret
ENV_FILE = Path("current") / "env"
_MIN_TOKEN_CHARS = 24


def _write_private(path: Path, text: str) -> None:
    """``text`` in a file only its owner can read, from its creation on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)  # a file that existed keeps its mode through O_CREAT


def stable_token(workdir: Path) -> str:
    """The work directory's write token: read back if one was made, else made now."""
    path = workdir / TOKEN_FILE
    if path.is_file():
        kept = path.read_text().strip()
        if len(kept) >= _MIN_TOKEN_CHARS and kept.isascii() and not any(c.isspace() for c in kept):
            return kept
    token = secrets.token_urlsafe(24)
    _write_private(path, token + "\n")
    return token


def env_text(variables: Mapping[str, str]) -> str:
    """``export`` lines a POSIX shell sources, each value quoted."""
    lines = ["# written by `opsmesh up` for this run; `source` it in another terminal"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    return "\n".join(lines) + "\n"


def write_env(workdir: Path, variables: Mapping[str, str]) -> Path:
    path = workdir / ENV_FILE
    _write_private(path, env_text(variables))
    return path


def remove_env(workdir: Path) -> None:
    """The run is over: its addresses must not be sourced by mistake."""
    (workdir / ENV_FILE).unlink(missing_ok=True)
