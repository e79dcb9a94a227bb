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
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Event

# The key of the advisory lock that orders event inserts; any constant other code does not use.
COMMIT_ORDER_LOCK = 0x73686F70_6576  # "shop" "ev"


async def insert_events(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Store a transaction's events in one statement; call it last, just before the commit."""
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(COMMIT_ORDER_LOCK)))
    await session.execute(insert(Event), list(events))
