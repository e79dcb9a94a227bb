"""The service as the contract runs it, `uvicorn main:app` with uvicorn's default settings, over real sockets.

Uvicorn believes proxy headers from loopback by default, notices clients that leave, and writes HEAD answers
itself: what reaches the app from a real server, not from an in-process transport.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.client_ip import UNKNOWN_CLIENT
from tests.conftest import PROJECT_ROOT
from tests.prometheus_text import sample_value, samples

AUTH_LIMIT = 3
LOGIN = "/api/v1/auth/login"
# Deadlines for a server that went wrong, not speed requirements.
START_SECONDS = 60
STOP_SECONDS = 20


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line the server wrote: JSON logs as objects, anything else (a bare traceback) as {"raw": line}."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        return lines

    def errors(self) -> list[dict[str, Any]]:
        return [
            line
            for line in self.log_lines()
            if line.get("level") in ("ERROR", "CRITICAL") or "Traceback" in json.dumps(line)
        ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module", params=["auto", "h11"], ids=["httptools", "h11"])
def server(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    folder = tmp_path_factory.mktemp("uvicorn")
    database = folder / "shop.db"
    shutil.copyfile(sqlite_template, database)
    # Whatever the developer's shell says about proxies, Redis or metrics, this is uvicorn's default set-up.
    dropped = {"FORWARDED_ALLOW_IPS", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "TRUSTED_PROXIES"}
    env = {key: value for key, value in os.environ.items() if key.upper() not in dropped} | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SECRET_KEY": "a-signing-key-for-the-plain-uvicorn-tests-only",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/minute",
        "RATE_LIMIT_DEFAULT": "1000/minute",
        "LOG_LEVEL": "INFO",
    }
    port = _free_port()
    log = folder / "server.log"
    command = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter, no shell)
            [*command, "--http", request.param],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Server(port, process, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start:\n{log.read_text(errors='replace')[-5000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(started.url("/health"), timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        yield started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_forged_forwarded_for_gets_no_budget_of_its_own(server):
    """Over loopback uvicorn takes the client from X-Forwarded-For; with TRUSTED_PROXIES empty nothing may."""
    forged = [f"198.51.100.{number}" for number in range(AUTH_LIMIT + 2)]
    with httpx.Client(timeout=30) as http:
        responses = [
            http.post(
                server.url(LOGIN),
                json={"username": "nobody", "password": "not-the-password"},
                headers={"X-Forwarded-For": address, "X-Request-ID": f"forged-{number}"},
            )
            for number, address in enumerate(forged)
        ]

    assert [response.status_code for response in responses] == [401] * AUTH_LIMIT + [429, 429]
    logged = {
        line["request_id"]: line["client"]
        for line in server.log_lines()
        if line.get("logger") == "shop.access" and str(line.get("request_id")).startswith("forged-")
    }
    assert logged == {f"forged-{number}": UNKNOWN_CLIENT for number in range(len(forged))}


def _metrics(server: Server) -> str:
    return httpx.get(server.url("/metrics"), timeout=30).text


def _counts(metrics: str, path: str) -> dict[str, float]:
    """http_requests_total of POST `path`, by status."""
    return {
        labels["status"]: sample_value(metrics, "http_requests_total", **labels)
        for labels in samples(metrics, "http_requests_total")
        if labels["method"] == "POST" and labels["handler"] == path
    }


@pytest.mark.parametrize("path", [LOGIN, "/api/v1/products", "/api/v1/orders"])
def test_client_leaving_mid_body_is_counted_apart_and_logged_without_error(server, path):
    before = _counts(_metrics(server), path)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(
            f"POST {path} HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode()
            + b'{"use'
        )
        raw.shutdown(socket.SHUT_WR)
        # The server closes its side when it sees ours close; whatever it wrote first arrives before that.
        answered = b"".join(iter(lambda: raw.recv(65536), b""))

    deadline = time.monotonic() + START_SECONDS
    while sum((after := _counts(_metrics(server), path)).values()) == sum(before.values()):
        assert time.monotonic() < deadline, f"the request to {path} was never counted"
        time.sleep(0.05)
    assert answered == b""
    added = {status: count - before.get(status, 0) for status, count in after.items() if count != before.get(status)}
    assert added == {"499": 1}
    assert server.errors() == []
    access = [line for line in server.log_lines() if line.get("logger") == "shop.access" and line["status"] == 499]
    assert {(line["path"], line["level"]) for line in access} >= {(path, "INFO")}


def _raw_exchange(server: Server, request: bytes) -> tuple[bytes, bytes]:
    """Send one request on a connection of its own; the response's head and whatever followed it.

    The request asks the server to close the connection after answering (closing our side first would make
    uvicorn drop the request as abandoned).
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
        raw.sendall(request)
        received = b"".join(iter(lambda: raw.recv(65536), b""))
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("path", ["/health", "/docs", "/api/v1/products/1"])
def test_head_gets_the_head_of_get_and_not_a_byte_more(server, path):
    requests = {
        method: f"{method} {path} HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n".encode()
        for method in ("GET", "HEAD")
    }
    get_head, get_body = _raw_exchange(server, requests["GET"])
    head_head, after_head = _raw_exchange(server, requests["HEAD"])

    status_line = get_head.split(b"\r\n")[0]
    assert head_head.split(b"\r\n")[0] == status_line
    assert after_head == b""
    lengths = [line for line in head_head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    assert lengths == [f"content-length: {len(get_body)}".encode()]
    assert server.errors() == []
