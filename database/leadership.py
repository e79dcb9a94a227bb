"""Which process publishes the events: one relay at a time for one database.

PostgreSQL: a session-level advisory lock (database/repositories/events.RELAY_LOCK), taken on a connection of its
own outside the pool and held for as long as the process leads. The server lets go of it when that session ends:
the process died (the kernel closes its sockets, so at once for kill -9), or the connection dropped. For a host
that vanishes without closing anything, the server's TCP keepalives on that session end it within about 20 s.
The connection runs in autocommit, so holding the lock never holds a transaction (or a snapshot) open.

SQLite file: an exclusive flock on a file beside the database, which the kernel lets go of when the process
dies. In-memory SQLite: the process is alone with its database, so it always leads.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from config import Settings
from database.repositories import events as events_repo

logger = logging.getLogger(__name__)

# Bounds on a database that stopped answering: a check that hangs this long counts as a lost lock.
CHECK_TIMEOUT_SECONDS = 5.0
# asyncpg passes these to the server for the lock's session: probe an idle client after 10 s, every 3 s, 3 times.
LOCK_SESSION_SETTINGS = {
    "application_name": "shop-event-relay",
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "3",
    "tcp_keepalives_count": "3",
}
LOCK_FILE_SUFFIX = ".relay-lock"


class LeadershipLostError(Exception):
    """The lock may have passed to another process: stop publishing."""


class Leadership(Protocol):
    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; True when this process now leads."""
        ...

    async def confirm(self) -> None:
        """Raise LeadershipLostError unless the lock is still ours."""
        ...

    async def release(self) -> None: ...

    async def close(self) -> None: ...


class AdvisoryLockLeadership:
    def __init__(self, database_url: str) -> None:
        self._engine: AsyncEngine = create_async_engine(
            database_url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"server_settings": LOCK_SESSION_SETTINGS, "timeout": CHECK_TIMEOUT_SECONDS},
        )
        self._connection: AsyncConnection | None = None
        self._held = False

    async def try_acquire(self) -> bool:
        try:
            if self._connection is None:
                self._connection = await self._engine.connect()
            self._held = await asyncio.wait_for(events_repo.try_relay_lock(self._connection), CHECK_TIMEOUT_SECONDS)
        except Exception:
            await self._drop_connection()
            raise
        return self._held

    async def confirm(self) -> None:
        if not self._held or self._connection is None:
            raise LeadershipLostError("the relay lock is not held")
        try:
            # The lock lives as long as its session: a live connection still holds it.
            await asyncio.wait_for(events_repo.check_connection(self._connection), CHECK_TIMEOUT_SECONDS)
        except Exception as error:
            await self._drop_connection()
            raise LeadershipLostError("the connection holding the relay lock failed") from error

    async def release(self) -> None:
        if self._held and self._connection is not None:
            try:
                await asyncio.wait_for(events_repo.release_relay_lock(self._connection), CHECK_TIMEOUT_SECONDS)
            except Exception:
                # Ending the session releases it all the same.
                await self._drop_connection()
        self._held = False

    async def _drop_connection(self) -> None:
        connection, self._connection, self._held = self._connection, None, False
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        await self.release()
        await self._drop_connection()
        await self._engine.dispose()


class FileLockLeadership:
    """flock on `path`. Opening a local file and a non-blocking flock take microseconds: fine on the event loop."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._descriptor: int | None = None

    async def try_acquire(self) -> bool:
        if self._descriptor is not None:
            return True
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    async def confirm(self) -> None:
        if self._descriptor is None:
            raise LeadershipLostError("the relay lock file is not locked")

    async def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            # Closing the only descriptor of the open file lets go of its flock.
            os.close(descriptor)

    async def close(self) -> None:
        await self.release()


class SoleProcessLeadership:
    """In-memory SQLite: no other process can see the events."""

    async def try_acquire(self) -> bool:
        return True

    async def confirm(self) -> None:
        return None

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


def relay_leadership(settings: Settings) -> Leadership:
    if not settings.is_sqlite:
        return AdvisoryLockLeadership(settings.database_url)
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return SoleProcessLeadership()
    path = Path(database)
    return FileLockLeadership(path.with_name(path.name + LOCK_FILE_SUFFIX))
