"""The second terminal's env file and the work directory's stable token."""

from __future__ import annotations

import subprocess
from pathlib import Path

from opsmesh_dev.tools.run_env import ENV_FILE, remove_env, stable_token, write_env


def test_the_token_is_made_once_per_work_directory_and_kept_private(tmp_path: Path) -> None:
    first = stable_token(tmp_path)
    assert len(first) >= 24
    assert stable_token(tmp_path) == first
    assert (tmp_path / "api-token").stat().st_mode & 0o777 == 0o600
    assert stable_token(tmp_path / "other") != first


def test_a_token_file_that_is_not_a_token_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "api-token").write_text("short\n")
    token = stable_token(tmp_path)
    assert token != "short"
    assert stable_token(tmp_path) == token


def test_the_env_file_sources_in_a_shell_with_every_value_intact(tmp_path: Path) -> None:
    tricky = "postgresql://u:p'a$s@127.0.0.1:5432/db?x=1&y=2"
    path = write_env(tmp_path, {"OPSMESH_PG_DSN": tricky, "OPSMESH_API_TOKEN": "t0k"})
    assert path == tmp_path / ENV_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    shown = subprocess.run(
        ["bash", "-c", f'source {path} && printf "%s|%s" "$OPSMESH_PG_DSN" "$OPSMESH_API_TOKEN"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == f"{tricky}|t0k"
    remove_env(tmp_path)
    assert not path.exists()
    remove_env(tmp_path)  # already gone: nothing to do
