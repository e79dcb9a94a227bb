"""Alembic environment: async engine from DATABASE_URL, one migrator at a time."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from config import Settings
from database.connection import create_engine, write_options
from models import Base

# Any fixed number: the PostgreSQL advisory lock that lets one instance migrate while the others wait.
MIGRATION_LOCK_ID = 7_284_113_901

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _settings() -> Settings:
    url = config.attributes.get("database_url")
    # Migrations need no signing key; "test" keeps Settings from creating or demanding one.
    return Settings(environment="test", **({"database_url": url} if url else {}))


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several instances may start at once; the lock is released when this transaction ends.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_settings())
    async with engine.connect() as connection:
        # A real transaction (reads run in autocommit), which the advisory lock lives in; on SQLite, BEGIN
        # IMMEDIATE: a second migrator waits for the first instead of racing it.
        connection = await connection.execution_options(**write_options(connection.dialect.name))
        await connection.run_sync(_run_migrations)
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
