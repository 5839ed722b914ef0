"""Child processes for infrastructure: free ports, readiness waits, clean stops."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class InfrastructureUnavailable(RuntimeError):
    """A part could not be installed or started; the message says what and what to do."""

    def __init__(self, part: str, problem: str, remedy: str) -> None:
        super().__init__(f"{part}: {problem}\n  -> {remedy}")
        self.part = part


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port`` (Linux ``/proc``):
    ``free_port`` only finds a port free at that moment, so another process may take it
    before a child binds it, and a readiness probe would then be answered by that one."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    if not inodes:
        return False
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    process: subprocess.Popen[Any] | None = None,
    log_file: Path | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; raise
    ``TimeoutError`` after ``timeout_s``, or ``RuntimeError`` once ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}{_tail(log_file)}")
        time.sleep(0.1)  # polling interval of the condition wait
    raise TimeoutError(f"{what} not ready after {timeout_s}s{_tail(log_file)}")


def _tail(log_file: Path | None, lines: int = 30) -> str:
    if log_file is None or not log_file.exists():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- last lines of " + str(log_file) + " ---\n" + "\n".join(text)


def spawn(
    args: Sequence[str],
    *,
    log_file: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session so a stop can signal its whole group."""
    command = list(args)
    if user is not None:
        command = ["runuser", "-u", user, "--", *command]
    handle = log_file.open("ab")
    try:
        return subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        handle.close()


def terminate(
    process: subprocess.Popen[bytes], *, grace_s: float = 15.0, sig: int = signal.SIGTERM
) -> None:
    if process.poll() is not None:
        return
    _signal_group(process, sig)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def running_as_root() -> bool:
    return os.geteuid() == 0
