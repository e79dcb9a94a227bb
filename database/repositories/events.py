"""SQL for the event outbox.

Commit order. An event's `id` comes from a sequence, taken at insert; on PostgreSQL a transaction that took id 10
can commit after one that took id 11, and a reader paging by id would then step over 10 for good. So the insert
of a transaction's events is the last statement before its commit, and it first takes one transaction-level
advisory lock that is let go only once the commit is visible (PostgreSQL makes a commit visible before it
releases locks). Event-writing transactions thus get their ids in the order they commit, and a reader that
sees id n sees every committed id below it: paging by id is paging in commit order, missing nothing.
The cost: from the event insert to the end of the commit (one INSERT and the WAL flush), event-writing
transactions queue on that lock; the rest of their work still runs side by side. SQLite has one writer at a
time already, so it needs no lock.

The relay (services/event_relay.py) relies on the same property: the oldest unpublished events by id are the
oldest committed ones, and no event can commit later with a smaller id.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from database.functions import escape_like
from database.pagination import CursorRequest, Keyset, Page, fetch_page
from models import Event

# The feed's order: commit order (see above).
COMMIT_ORDER = Keyset((Event.id,))
# A `type` filter ending in this is a prefix: `shop.order.` is every order event.
TYPE_PREFIX_END = "."

# The key of the advisory lock that orders event inserts; any constant other code does not use.
COMMIT_ORDER_LOCK = 0x73686F70_6576  # "shop" "ev"
# The key of the session-level advisory lock that the one publishing relay holds ("shop" "re").
RELAY_LOCK = 0x73686F70_7265


async def insert_events(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Store a transaction's events in one statement; call it last, just before the commit."""
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(COMMIT_ORDER_LOCK)))
    await session.execute(insert(Event), list(events))


async def redact_subject(session: AsyncSession, *, subject: str, data: dict[str, Any]) -> None:
    """Replace the `data` of every stored event about `subject`; ids, types, times and order stay."""
    await session.execute(update(Event).where(Event.subject == subject).values(data=data))


async def list_events(
    session: AsyncSession, page: CursorRequest, *, type: str | None = None, subject: str | None = None
) -> Page[Event]:
    """Events in commit order after the cursor's id: of `type` (exact, or a prefix ending in "."), of `subject`.

    A prefix is a LIKE with the prefix escaped, which matches bytewise whatever the database's collation (a range
    `type >= 'shop.order.' AND type < 'shop.order/'` does not under a linguistic one, which ignores punctuation).
    """
    conditions: list[ColumnElement[bool]] = []
    if type is not None:
        if type.endswith(TYPE_PREFIX_END):
            conditions.append(Event.type.like(f"{escape_like(type)}%", escape="\\"))
        else:
            conditions.append(Event.type == type)
    if subject is not None:
        conditions.append(Event.subject == subject)
    return await fetch_page(session, select(Event).where(*conditions), page, COMMIT_ORDER)


async def try_relay_lock(connection: AsyncConnection) -> bool:
    """PostgreSQL: take the relay's lock for this connection's session, if no other session holds it."""
    return bool(await connection.scalar(select(func.pg_try_advisory_lock(RELAY_LOCK))))


async def release_relay_lock(connection: AsyncConnection) -> None:
    await connection.scalar(select(func.pg_advisory_unlock(RELAY_LOCK)))


async def check_connection(connection: AsyncConnection) -> None:
    """One round trip: raises if the connection, and so the session holding a lock, is gone."""
    await connection.scalar(select(1))


async def unpublished_events(session: AsyncSession, *, limit: int) -> Sequence[Event]:
    """The oldest events not yet in JetStream, in commit order (off ix_events_unpublished)."""
    statement = select(Event).where(Event.published_at.is_(None)).order_by(Event.id).limit(limit)
    return (await session.scalars(statement)).all()


async def mark_published(session: AsyncSession, *, ids: Sequence[int], at: datetime) -> None:
    await session.execute(update(Event).where(Event.id.in_(ids)).values(published_at=at))


async def delivery_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many events wait for JetStream, and the time of the oldest of them (None when none waits)."""
    count = await session.scalar(select(func.count()).select_from(Event).where(Event.published_at.is_(None)))
    oldest = await session.scalar(select(Event.time).where(Event.published_at.is_(None)).order_by(Event.id).limit(1))
    return int(count or 0), oldest


async def delete_events_before(session: AsyncSession, *, cutoff: datetime, published_only: bool) -> int:
    """Delete events that happened before `cutoff`; with `published_only`, only those JetStream has."""
    statement = delete(Event).where(Event.time < cutoff)
    if published_only:
        statement = statement.where(Event.published_at.is_not(None))
    return int((await session.execute(statement)).rowcount or 0)
