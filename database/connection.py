"""The engine, its pool, sessions, and the write transaction (unit of work) every change goes through."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from config import Settings
from database.functions import SQLITE_CASEFOLD, sqlite_casefold

logger = logging.getLogger(__name__)

# Execution option that marks a connection as about to write; on SQLite it turns BEGIN into BEGIN IMMEDIATE.
WRITE_INTENT = "shop_write_intent"


# PostgreSQL's default level; the conditional UPDATEs and unique constraints the services rely on make it enough.
WRITE_ISOLATION = "READ COMMITTED"

# A pooled connection that came back this recently is taken as alive; one idle for longer is pinged first.
PING_AFTER_IDLE_SECONDS = 5.0


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _create_sqlite_engine(settings)
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_recycle=1800,
        # Reads run outside a transaction: BEGIN and ROLLBACK around two SELECTs were two more round trips per
        # request. Every write opts back in through write_transaction.
        isolation_level="AUTOCOMMIT",
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """pool_pre_ping, but only for connections that sat idle.

    asyncpg's ping is three round trips (BEGIN, a query, ROLLBACK); made on every checkout, it cost as much as
    the queries of a small request. A connection in steady use proves itself alive; one whose server went away
    is discarded here and the pool hands out another, as pool_pre_ping would.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(f"pooled connection failed its ping: {error}") from error


def _create_sqlite_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
    )
    busy_timeout_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver, so that BEGIN is ours to spell (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; the busy timeout makes writers queue instead of failing.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function(SQLITE_CASEFOLD, 1, sqlite_casefold, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # A writer takes the write lock up front: upgrading a read transaction later can fail at once with
        # "database is locked", without waiting for the busy timeout.
        immediate = connection.get_execution_options().get(WRITE_INTENT, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One engine (and pool) per process, opened and closed by the application's lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def write_options(dialect_name: str) -> dict[str, Any]:
    """Execution options for a connection about to write: a real transaction, and on SQLite the write lock."""
    if dialect_name == "sqlite":
        return {WRITE_INTENT: True}
    return {WRITE_INTENT: True, "isolation_level": WRITE_ISOLATION}


@asynccontextmanager
async def write_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A unit of work: everything inside commits together or not at all.

    A read transaction left open by earlier reads (loading the current user, say) is ended first, so that the
    write starts on a fresh transaction that declares its intent to write.
    """
    await release_connection(session)
    await session.connection(execution_options=write_options(session.get_bind().dialect.name))
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def release_connection(session: AsyncSession) -> None:
    """End the read transaction so its pooled connection goes back while the caller waits on something slow."""
    if session.new or session.dirty or session.deleted:
        # Changes belong inside write_transaction; ending a read must never be what commits them.
        raise RuntimeError("unflushed changes outside a write transaction")
    if session.in_transaction():
        await session.commit()
