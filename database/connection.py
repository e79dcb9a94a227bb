"""The engine, its pool, sessions, and the write transaction (unit of work) every change goes through."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from config import DEFAULT_EVENT_SOURCE, Settings
from database.functions import SQLITE_CASEFOLD, sqlite_casefold
from database.repositories.events import insert_events

logger = logging.getLogger(__name__)

# Execution option that marks a connection as about to write; on SQLite it turns BEGIN into BEGIN IMMEDIATE.
WRITE_INTENT = "shop_write_intent"


# The CloudEvents `source` of the events a session's units of work store (EVENT_SOURCE).
EVENT_SOURCE = "shop_event_source"
# Where a unit of work keeps the events of its change until it commits them with it (`stage_event`).
_STAGED_EVENTS = "shop_staged_events"
# The asyncio.Event a unit of work sets once it committed events: the relay of this process wakes up at once.
EVENTS_COMMITTED = "shop_events_committed"

# When a pooled connection last went back to the pool (its entry's info, emptied when the connection is replaced).
_CHECKED_IN_AT = "shop_checked_in_at"

# PostgreSQL's default level; the conditional UPDATEs and unique constraints the services rely on make it enough.
WRITE_ISOLATION = "READ COMMITTED"


def create_engine(settings: Settings) -> AsyncEngine:
    engine = _create_sqlite_engine(settings) if settings.is_sqlite else _create_postgresql_engine(settings)
    event.listen(engine.sync_engine, "handle_error", _connect_failure_is_disconnect)
    return engine


def _create_postgresql_engine(settings: Settings) -> AsyncEngine:
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
    _check_out_live_connections(engine, ping_after_idle=settings.database_ping_after_idle_seconds)
    return engine


def _check_out_live_connections(engine: AsyncEngine, *, ping_after_idle: float) -> None:
    """Replace, at checkout, a pooled connection the server has dropped, with every connection as old as it.

    A server that closes a connection (a restart, a failover, a terminated backend) tells the socket, and asyncpg
    marks it closed as soon as the event loop reads that: a check without a round trip. A connection idle for
    `ping_after_idle` seconds or more, which a firewall or NAT may have dropped without a word, is pinged too (one
    empty statement). SQLAlchemy's `pool_pre_ping` pings at every checkout instead, a round trip and about 20 µs
    of CPU on every request, for connections that served one milliseconds before (HikariCP skips its check
    likewise for connections used within its `aliveBypassWindowMs`).
    """
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _verify_checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        # Raising InvalidatePoolError makes the pool invalidate this connection and every older one, then hand
        # out a new connection instead, as its own pre-ping does.
        if dbapi_connection.driver_connection.is_closed():
            raise InvalidatePoolError("the server closed the pooled connection")
        # A connection opened for this checkout has no checkin yet, and needs no check.
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < ping_after_idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError("the pooled connection did not answer a ping") from error
            raise


def _connect_failure_is_disconnect(context: ExceptionContext) -> None:
    """Count a failure to open a connection (no server, no file, no free slot) as a lost database.

    SQLAlchemy flags a dropped connection (`connection_invalidated`) but not a refused one, which the driver
    reports like any failed statement (SQLite's "unable to open database file", PostgreSQL's "too many clients").
    """
    if context.connection is None and not context.is_pre_ping:
        context.is_disconnect = True


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached or dropped the connection, not that a statement failed.

    Besides what SQLAlchemy flags, asyncpg lets OS errors out of connect as they are (connection refused, a name
    that does not resolve, a connect timeout), and a pool with no connection free within its timeout is as
    unavailable as a database that does not answer.
    """
    if isinstance(error, DBAPIError):
        return error.connection_invalidated
    return isinstance(error, OSError | PoolTimeoutError)


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
        self.events_committed = asyncio.Event()
        self.sessionmaker = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            autoflush=False,
            info={EVENT_SOURCE: settings.event_source, EVENTS_COMMITTED: self.events_committed},
        )

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
    session.info[_STAGED_EVENTS] = []
    try:
        yield session
        # Whatever is still pending goes first: flushed after the events' lock, a row lock it waits for could be
        # held by a transaction queued on that lock (a deadlock), and the lock would be held longer.
        await session.flush()
        await insert_events(session, session.info[_STAGED_EVENTS])
        await session.commit()
        if session.info[_STAGED_EVENTS] and (committed := session.info.get(EVENTS_COMMITTED)) is not None:
            committed.set()
    except BaseException:
        await session.rollback()
        raise
    finally:
        del session.info[_STAGED_EVENTS]


def stage_event(session: AsyncSession, event: dict[str, Any]) -> None:
    """Have the unit of work running on `session` store `event` (an `events` row) in the commit of its change."""
    if _STAGED_EVENTS not in session.info:
        raise RuntimeError("an event is recorded only inside write_transaction, with the change it describes")
    session.info[_STAGED_EVENTS].append({"source": session.info.get(EVENT_SOURCE, DEFAULT_EVENT_SOURCE), **event})


async def release_connection(session: AsyncSession) -> None:
    """End the read transaction so its pooled connection goes back while the caller waits on something slow."""
    if session.new or session.dirty or session.deleted:
        # Changes belong inside write_transaction; ending a read must never be what commits them.
        raise RuntimeError("unflushed changes outside a write transaction")
    if session.in_transaction():
        await session.commit()
