"""Each checkout of a pooled PostgreSQL connection pings it, in one round trip; a dead one is replaced at once."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import make_url, text

from config import Settings
from database.connection import Database, write_transaction

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    """A one-connection pool, so every checkout gets the same connection back."""
    opened = Database(
        Settings(environment="test", database_url=postgres_url, database_pool_size=1, database_max_overflow=0)
    )
    yield opened
    await opened.dispose()


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


async def backend_pid(database: Database) -> int:
    async with database.sessionmaker() as session:
        return (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def test_a_checkout_costs_one_empty_statement_even_after_a_write(database):
    statements = await statements_of_the_pooled_connection(database)
    checkouts = []
    for _ in range(2):
        async with database.engine.connect():
            checkouts.append(await logged(statements))
        async with database.sessionmaker() as session, write_transaction(session):
            await session.execute(text("SELECT 1"))
        await logged(statements)
        statements.clear()

    # Outside a transaction asyncpg pings with ";" alone; inside one it would add BEGIN and ROLLBACK. The write
    # in between ran at READ COMMITTED, and the connection came back to AUTOCOMMIT without a statement.
    assert checkouts == [[";"], [";"]]


async def test_connection_whose_server_went_away_is_replaced(database, postgres_url):
    first = await backend_pid(database)
    admin = await asyncpg.connect(make_url(postgres_url).set(drivername="postgresql").render_as_string(False))
    try:
        # Returns once the backend is gone, not when it was only told to go.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", first)
    finally:
        await admin.close()

    # At once: no idle time needed for the ping to find it dead.
    second = await backend_pid(database)

    assert second != first
