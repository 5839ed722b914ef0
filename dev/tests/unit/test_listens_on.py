"""``listens_on``: whether a port's listening socket is a given process's (the mesh checks
that a readiness answer comes from its own child, not from whoever took its free port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from opsmesh_dev.infra.process import free_port, listens_on, port_open, wait_until


def test_a_socket_this_process_listens_on_is_its_own() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listens_on(os.getpid(), port)
    assert not listens_on(os.getpid(), port)  # closed: nobody listens


def test_a_port_another_process_listens_on_is_not_this_ones() -> None:
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open(port), timeout_s=30, what="http.server", process=other)
        assert listens_on(other.pid, port)
        assert not listens_on(os.getpid(), port)
    finally:
        other.terminate()
        other.wait(timeout=10)
