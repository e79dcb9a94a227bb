"""Real server processes, for the tests that need real sockets: a free port, a start, a wait until ready, a stop."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT

# Deadlines for a start or a stop that went wrong, not speed requirements.
START_SECONDS = 90
STOP_SECONDS = 20


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(name: str, command: list[str], *, env: dict[str, str], log: Path, port: int) -> Server:
    with log.open("wb") as output:
        # Its own process group, so that stopping it also stops what it started (workers, a migration).
        process = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, port, process, log)


def start_uvicorn(name: str, *, env: dict[str, str], log: Path) -> Server:
    """One uvicorn process serving `main:app` on a free port of 127.0.0.1, configured by `env` alone."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
    return launch(name, [*command, "--no-proxy-headers"], env={**os.environ, **env}, log=log, port=port)


def wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server {server.name} exited with {server.process.returncode}:\n{server.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(server.url("/ready"), timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"server {server.name} was not ready after {START_SECONDS} s:\n{server.output()}")


def stop(servers: list[Server]) -> None:
    running = [server for server in servers if server.process.poll() is None]
    for server in running:
        # SIGTERM lets the server stop gracefully; the group also reaches its workers or a migration under way.
        os.killpg(server.process.pid, signal.SIGTERM)
    for server in running:
        try:
            server.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
