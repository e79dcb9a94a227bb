"""kill -9 of the publishing process in the middle of an order storm: the other process takes over, and the stream
ends up with every committed event exactly once. Two real uvicorn processes, on PostgreSQL and on a SQLite file.
"""

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from models import Event
from services.events import EventType
from tests.helpers import PASSWORD, bearer, unique
from tests.jetstream import ARRIVAL_DEADLINE_SECONDS, assert_stream_holds_each_event_once, eventually
from tests.servers import Server, start_uvicorn, stop, wait_until_ready

SECRET_KEY = "one-signing-key-shared-by-both-processes-of-the-test"
ADMIN = {"username": "relayadmin", "email": "relayadmin@example.com", "password": "relay-admin-password"}
# What services/event_relay.py logs when its process takes the lead.
LEADING = "this process now publishes the events to NATS"
ORDERS = 60
KILL_AFTER = 20
AT_ONCE = 6
BUYERS = 4


@pytest.fixture
def servers(backend, jetstream, tmp_path: Path) -> Iterator[list[Server]]:
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": backend.database_url,
        "REDIS_URL": backend.redis_url or "",
        "SECRET_KEY": SECRET_KEY,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "INFO",
        "ORDER_EXPIRY_CHECK_SECONDS": "3600",
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
        **jetstream.env,
    }
    started = [start_uvicorn(name, env=env, log=tmp_path / f"{name}.log") for name in ("A", "B")]
    try:
        for server in started:
            wait_until_ready(server)
        yield started
    finally:
        stop(started)


def _led(server: Server) -> bool:
    return LEADING in server.log.read_text(errors="replace")


def _leaders(servers: list[Server]) -> list[Server]:
    return [server for server in servers if _led(server)]


async def _wait_for_one_leader(servers: list[Server]) -> Server:
    deadline = time.monotonic() + ARRIVAL_DEADLINE_SECONDS
    while not (leaders := _leaders(servers)):
        assert time.monotonic() < deadline, "no process took the lead"
        await asyncio.sleep(0.05)
    assert len(leaders) == 1, [server.name for server in leaders]
    return leaders[0]


async def _setup(http: httpx.AsyncClient, server: Server) -> tuple[int, list[dict[str, str]]]:
    login = await http.post(server.url("/api/v1/auth/login"), json={k: ADMIN[k] for k in ("username", "password")})
    assert login.status_code == 200, login.text
    admin = bearer(login.json()["access_token"])
    body = {"name": unique("Storm "), "price": "3.00", "stock": ORDERS * 10}
    created = await http.post(server.url("/api/v1/products"), json=body, headers=admin)
    assert created.status_code == 201, created.text
    buyers = []
    for _ in range(BUYERS):
        username = unique("storm")
        registered = await http.post(
            server.url("/api/v1/auth/register"),
            json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        tokens = await http.post(server.url("/api/v1/auth/login"), json={"username": username, "password": PASSWORD})
        buyers.append(bearer(tokens.json()["access_token"]))
    return created.json()["id"], buyers


async def test_kill_9_of_the_publishing_process_mid_storm_loses_and_doubles_nothing(backend, servers, jetstream):
    leader = await _wait_for_one_leader(servers)
    survivor = next(server for server in servers if server is not leader)
    async with httpx.AsyncClient(timeout=60) as http:
        product, buyers = await _setup(http, survivor)
        gate = asyncio.Semaphore(AT_ONCE)
        answered: list[int] = []
        killed = asyncio.Event()
        targets = cycle(servers)

        async def order(headers: dict[str, str]) -> None:
            async with gate:
                server = survivor if killed.is_set() else next(targets)
                try:
                    response = await http.post(
                        server.url("/api/v1/orders"),
                        json={"items": [{"product_id": product, "quantity": 1}]},
                        headers=headers,
                    )
                except httpx.TransportError:
                    # Sent to the process being killed: it may or may not have committed, and the stream must
                    # agree with the database either way.
                    assert server is leader
                    return
                assert response.status_code == 201, response.text
                answered.append(response.status_code)
                if len(answered) == KILL_AFTER and not killed.is_set():
                    killed.set()
                    os.killpg(leader.process.pid, signal.SIGKILL)

        await asyncio.gather(*(order(buyers[n % BUYERS]) for n in range(ORDERS)))

    assert killed.is_set()
    leader.process.wait()
    assert len(answered) >= ORDERS - AT_ONCE
    engine = create_async_engine(backend.database_url)
    try:

        async def all_published() -> bool:
            async with engine.connect() as connection:
                return (await connection.scalar(select(Event.id).where(Event.published_at.is_(None)).limit(1))) is None

        await eventually(all_published, "events still unpublished after the takeover")
        assert _led(survivor)
        async with engine.connect() as connection:
            events = [Event(**row._mapping) for row in await connection.execute(select(Event).order_by(Event.id))]
    finally:
        await engine.dispose()

    assert sum(event.type == EventType.ORDER_CREATED for event in events) >= len(answered)
    assert_stream_holds_each_event_once(await jetstream.messages(), events, jetstream)
