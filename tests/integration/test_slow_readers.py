"""Clients that pipeline big responses and never read them hold no pooled connection: everyone else is served.

The request's session gives its connection back before the response is sent, on every path. The first test
checks that in-process, path by path; the second on a real server with real sockets, where sending a response
waits for the client to read: the kernel takes a few pages of each slow reader, then its next request waits to
send for as long as the client does not read.
"""

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.roles import Role
from config import Settings
from database.connection import Database, write_transaction
from database.repositories.products import bulk_insert_products
from main import create_app
from tests.helpers import bearer, create_product, place_order, signed_in
from tests.prometheus_text import sample_value, samples
from tests.servers import Server, start_uvicorn, stop, wait_until_ready

ADMIN = {"username": "slowadmin", "email": "slowadmin@example.com", "password": "slow-admin-password"}
POOL_SIZE = 2
SLOW_READERS = POOL_SIZE + 2
# Each page of 100 such products is about 0.5 MB; a slow reader asks for this many at once, more than loopback
# buffers hold, so whatever the kernel takes, its connection ends up waiting to send.
PRODUCTS = 100
PIPELINED = 16
PAGE = f"/api/v1/products?size={PRODUCTS}"
# Deadline for the slow readers to be stuck, not a speed requirement.
STALL_SECONDS = 60


class PoolAtResponseStart:
    """Outermost middleware: how many pooled connections are checked out as each response starts."""

    def __init__(self, app: ASGIApp, *, shop: FastAPI, seen: list[int]) -> None:
        self.app, self.shop, self.seen = app, shop, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(self.shop.state.database.engine.pool.checkedout())
            await send(message)

        await self.app(scope, receive, recording_send)


async def test_connection_is_back_in_the_pool_before_any_response_starts(backend):
    seen: list[int] = []
    app = create_app(backend.settings())
    app.add_middleware(PoolAtResponseStart, shop=app, seen=seen)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://shop.test") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        admin, _ = await signed_in(client, Role.ADMIN)
        product = await create_product(client, admin, stock=1)
        path = f"/api/v1/products/{product['id']}"
        # Each after the current user was loaded, so each had a connection at some point.
        cases = {
            "read": (client.get(path, headers=admin), 200),
            "error raised by a service": (client.get("/api/v1/products/999999", headers=admin), 404),
            "invalid query": (client.get("/api/v1/products?size=0", headers=admin), 422),
            "write": (place_order(client, admin, [(product["id"], 1)]), 201),
            "write refused": (place_order(client, admin, [(product["id"], 1)]), 409),
        }
        outcomes = {}
        for case, (request, status) in cases.items():
            del seen[:]
            response = await request
            outcomes[case] = (response.status_code, seen[:])
            assert response.status_code == status, (case, response.text)

    assert outcomes == {case: (status, [0]) for case, (_, status) in cases.items()}


async def _seed_large_products(database_url: str) -> None:
    database = Database(Settings(environment="test", database_url=database_url))
    rows = [
        {"name": f"Large {number}", "description": "x" * 5000, "price": Decimal("1.00"), "stock": 1}
        for number in range(PRODUCTS)
    ]
    try:
        async with database.sessionmaker() as session, write_transaction(session):
            await bulk_insert_products(session, rows)
    finally:
        await database.dispose()


@pytest.fixture
def server(backend, tmp_path: Path) -> Iterator[Server]:
    """One uvicorn process with a pool of POOL_SIZE connections and a short wait for one."""
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "SECRET_KEY": "a-signing-key-for-the-slow-reader-test-only",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": str(POOL_SIZE),
        "DATABASE_MAX_OVERFLOW": "0",
        "DATABASE_POOL_TIMEOUT_SECONDS": "2",
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
    }
    started = start_uvicorn("slow-readers", env=env, log=tmp_path / "server.log")
    try:
        wait_until_ready(started)
        yield started
    finally:
        stop([started])


@contextlib.contextmanager
def slow_readers(server: Server, token: str) -> Iterator[list[socket.socket]]:
    """SLOW_READERS connections that each send PIPELINED page requests at once and never read an answer."""
    request = f"GET {PAGE} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    opened: list[socket.socket] = []
    try:
        for _ in range(SLOW_READERS):
            reader = socket.socket()
            opened.append(reader)
            # A small receive window keeps most of each page on the server's side.
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", server.port))
            reader.sendall(request * PIPELINED)
        yield opened
    finally:
        for reader in opened:
            # Reset rather than close gracefully: the server must not go on trying to send to it.
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            reader.close()


def _in_flight(metrics: str) -> float:
    return sample_value(metrics, "http_requests_in_flight")


def _answered(metrics: str) -> float:
    """Page requests answered so far, whatever their status."""
    series = [labels for labels in samples(metrics, "http_requests_total") if labels["handler"] == "/api/v1/products"]
    return sum(sample_value(metrics, "http_requests_total", **labels) for labels in series)


def _stuck(earlier: str, later: str) -> bool:
    """Whether, between two scrapes, every slow reader had a request in flight and none was answered.

    The kernel takes a few pages of each slow reader before the server has to wait; until then they progress.
    """
    return _answered(later) == _answered(earlier) >= SLOW_READERS and _in_flight(later) >= SLOW_READERS + 1


async def test_slow_readers_leave_the_pool_to_everyone_else(backend, server):
    await _seed_large_products(backend.database_url)
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(server.url("/api/v1/auth/login"), json={k: ADMIN[k] for k in ("username", "password")})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        listed = await http.get(server.url("/api/v1/products?size=1"), headers=bearer(token))
        product = server.url(f"/api/v1/products/{listed.json()['items'][0]['id']}")

        async def scrape() -> str:
            # The scrape is in flight too, hence SLOW_READERS + 1 above.
            return (await http.get(server.url("/metrics"))).text

        with slow_readers(server, token):
            deadline = time.monotonic() + STALL_SECONDS
            previous = await scrape()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                before = await scrape()
                if not _stuck(previous, before):
                    previous = before
                    continue
                other = await http.get(product, headers=bearer(token))
                ready = await http.get(server.url("/ready"))
                previous = await scrape()
                if _stuck(before, previous):
                    break  # the answers above came while every slow reader was held up
            else:
                pytest.fail(f"the slow readers never got stuck in {STALL_SECONDS} s:\n{previous}\n{server.output()}")

    assert other.status_code == 200, other.text
    assert ready.status_code == 200, ready.text
