"""The models and the migrations describe one schema: a migrated database is what the models would build."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from models import Base
from tests.conftest import Backend

# Index definitions as the database itself writes them (SQLite cannot reflect an index on an expression).
INDEX_DEFINITIONS = {
    "sqlite": "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    "postgresql": "SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
    "WHERE schemaname = current_schema()",
}


def _drift(connection: Connection) -> list[Any]:
    return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)


def _left_to_compare(connection: Connection) -> dict[str, Any]:
    """What Alembic's comparison leaves out: CHECK constraints, and on SQLite indexes on expressions."""
    inspector = inspect(connection)
    checks = {
        table: {check["name"]: check["sqltext"] for check in inspector.get_check_constraints(table)}
        for table in Base.metadata.tables
    }
    rows = connection.execute(text(INDEX_DEFINITIONS[connection.dialect.name]))
    indexes = {name: definition for table, name, definition in rows if table in Base.metadata.tables}
    return {"checks": checks, "indexes": indexes}


@asynccontextmanager
async def _built_by_the_models(backend: Backend) -> AsyncIterator[AsyncConnection]:
    """A connection to the schema `create_all` makes of the models, thrown away afterwards."""
    # PostgreSQL builds it in a schema of its own, inside a transaction that is rolled back.
    engine = create_async_engine("sqlite+aiosqlite://" if backend.name == "sqlite" else backend.database_url)
    try:
        async with engine.connect() as connection:
            if backend.name != "sqlite":
                await connection.execute(text("CREATE SCHEMA model_probe"))
                # public stays on the path, behind it, for the extensions' objects (pg_trgm's operator class).
                await connection.execute(text("SET LOCAL search_path TO model_probe, public"))
            # Not checking first: the migrated tables, visible through public, are not the ones to build.
            await connection.run_sync(Base.metadata.create_all, checkfirst=False)
            yield connection
            await connection.rollback()
    finally:
        await engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
async def test_a_migrated_database_matches_the_models(backend: Backend) -> None:
    engine = create_async_engine(backend.database_url)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(_drift)
            migrated = await connection.run_sync(_left_to_compare)
    finally:
        await engine.dispose()
    async with _built_by_the_models(backend) as connection:
        modelled = await connection.run_sync(_left_to_compare)
    assert drift == []
    assert migrated == modelled
