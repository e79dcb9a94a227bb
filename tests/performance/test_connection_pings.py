"""A pooled PostgreSQL connection is checked at checkout without a round trip, and pinged once it sat idle.

A connection the server dropped is replaced at once either way.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, make_url, text
from sqlalchemy.pool import ConnectionPoolEntry

from config import Settings
from database.connection import _CHECKED_IN_AT as CHECKED_IN_AT
from database.connection import Database, write_transaction

pytestmark = pytest.mark.postgres

# Longer than any test here takes: a connection checked in during the test is never idle this long.
NEVER_IDLE = 3600.0
PING = ";"


@pytest.fixture
async def one_connection_pool(postgres_url: str) -> AsyncIterator[Callable[..., Database]]:
    """Databases with a one-connection pool, so every checkout gets the same connection back."""
    opened: list[Database] = []

    def open_database(*, ping_after_idle: float) -> Database:
        settings = Settings(
            environment="test",
            database_url=postgres_url,
            database_pool_size=1,
            database_max_overflow=0,
            database_ping_after_idle_seconds=ping_after_idle,
        )
        opened.append(Database(settings))
        return opened[-1]

    yield open_database
    for database in opened:
        await database.dispose()


async def statements_of_the_pooled_connection(database: Database) -> list[str]:
    """A list that every statement the pool's one connection runs from now on is added to."""
    async with database.engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
    statements: list[str] = []
    driver.add_query_logger(lambda record: statements.append(record.query))
    return statements


async def logged(statements: list[str]) -> list[str]:
    # asyncpg calls its query loggers soon after the statement, not during it.
    await asyncio.sleep(0)
    return statements[:]


async def checkouts_and_writes(database: Database, statements: list[str]) -> list[list[str]]:
    """What each of two checkouts ran by itself, each after a write on the same connection."""
    checkouts = []
    for _ in range(2):
        async with database.sessionmaker() as session, write_transaction(session):
            await session.execute(text("SELECT 1"))
        await logged(statements)
        statements.clear()
        async with database.engine.connect():
            checkouts.append(await logged(statements))
    return checkouts


IDLE_SECONDS = 60.0


def checked_in_long_ago(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[CHECKED_IN_AT] -= 2 * IDLE_SECONDS


async def backend_pid(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def test_a_checkout_of_a_connection_used_moments_ago_costs_no_statement(one_connection_pool):
    database = one_connection_pool(ping_after_idle=NEVER_IDLE)
    statements = await statements_of_the_pooled_connection(database)

    # Nor does the way back: the write ran at READ COMMITTED, and the connection returned to AUTOCOMMIT without
    # a statement.
    assert await checkouts_and_writes(database, statements) == [[], []]


async def test_a_connection_idle_past_the_setting_is_pinged_with_one_empty_statement(one_connection_pool):
    # 0: every checkout finds the connection idle long enough.
    database = one_connection_pool(ping_after_idle=0)
    statements = await statements_of_the_pooled_connection(database)

    # Outside a transaction asyncpg pings with ";" alone; inside one it would add BEGIN and ROLLBACK.
    assert await checkouts_and_writes(database, statements) == [[PING], [PING]]


async def test_a_connection_idle_for_a_while_is_pinged_once_then_not_while_in_use(one_connection_pool):
    database = one_connection_pool(ping_after_idle=IDLE_SECONDS)
    # Idle for a while without waiting: the first check-in is dated back. A short setting and a real wait would
    # let a stalled machine leave the connection idle that long again between the two checkouts below.
    event.listen(database.engine.sync_engine, "checkin", checked_in_long_ago, once=True)
    statements = await statements_of_the_pooled_connection(database)

    checkouts = []
    for _ in range(2):
        async with database.engine.connect():
            checkouts.append(await logged(statements))
        statements.clear()

    assert checkouts == [[PING], []]


@pytest.mark.parametrize("ping_after_idle", [NEVER_IDLE, 0], ids=["without-a-ping", "with-a-ping"])
async def test_connection_whose_server_went_away_is_replaced(one_connection_pool, postgres_url, ping_after_idle):
    database = one_connection_pool(ping_after_idle=ping_after_idle)
    first = await backend_pid(database)
    admin = await asyncpg.connect(make_url(postgres_url).set(drivername="postgresql").render_as_string(False))
    try:
        # Returns once the backend is gone, not when it was only told to go.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", first)
    finally:
        await admin.close()

    # At once: the connection knows it was closed, and the one opened in its place works.
    second = await backend_pid(database)

    assert second != first
