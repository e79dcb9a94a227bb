"""Pooled PostgreSQL connections are pinged only after sitting idle, and a dead one is replaced, not handed out."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url, text

import database.connection as connection_module
from config import Settings
from database.connection import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Database, list[Any]]]:
    """A one-connection pool, with every ping it makes recorded."""
    opened = Database(
        Settings(environment="test", database_url=postgres_url, database_pool_size=1, database_max_overflow=0)
    )
    pings: list[Any] = []
    ping = opened.engine.dialect.do_ping

    def recorded_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(opened.engine.dialect, "do_ping", recorded_ping)
    yield opened, pings
    await opened.dispose()


async def backend_pid(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def test_connection_in_steady_use_is_not_pinged(database):
    opened, pings = database

    pids = {await backend_pid(opened) for _ in range(5)}

    assert len(pids) == 1  # one connection served all five
    assert len(pings) == 1  # pinged once, when it was new


async def test_idle_connection_whose_server_went_away_is_replaced(database, postgres_url, monkeypatch):
    opened, pings = database
    monkeypatch.setattr(connection_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection counts as idle
    first = await backend_pid(opened)
    admin = await asyncpg.connect(make_url(postgres_url).set(drivername="postgresql").render_as_string(False))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()

    second = await backend_pid(opened)

    assert second != first
    assert len(pings) == 3  # the first connection new, then dead (and dropped), then its replacement
