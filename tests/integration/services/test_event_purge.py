"""Housekeeping of the outbox: events past EVENT_RETENTION_DAYS go, never before NATS has them (NATS_URL set)."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from database.connection import Database, write_transaction
from models import Event
from models.base import utcnow
from services import maintenance
from services.events import EventType, record_event
from tests.jetstream import eventually
from tests.servers import free_port

RETENTION = timedelta(days=30)


async def _events(database: Database) -> dict[str, Event]:
    """Four events: old or recent, published or not, keyed so."""
    async with database.sessionmaker() as session, write_transaction(session):
        for n in range(4):
            record_event(session, type=EventType.CATEGORY_UPDATED, subject=f"categories/{n}", actor="system", data={})
    now = utcnow()
    async with database.sessionmaker() as session, write_transaction(session):
        rows = (await session.scalars(select(Event).order_by(Event.id))).all()
        names = ["old published", "old unpublished", "recent published", "recent unpublished"]
        for name, row in zip(names, rows, strict=True):
            old = name.startswith("old")
            await session.execute(
                update(Event)
                .where(Event.id == row.id)
                .values(
                    time=now - RETENTION - timedelta(hours=1) if old else now - RETENTION + timedelta(hours=1),
                    published_at=now if name.endswith(" published") else None,
                )
            )
    return dict(zip(names, rows, strict=True))


async def _left(database: Database, events: dict[str, Event]) -> set[str]:
    async with database.sessionmaker() as session:
        ids = set((await session.scalars(select(Event.id))).all())
    return {name for name, event in events.items() if event.id in ids}


@pytest.mark.parametrize(
    ("delivered", "kept"),
    [
        # NATS_URL set: an old event the relay has not published yet stays until it is published.
        (True, {"old unpublished", "recent published", "recent unpublished"}),
        # NATS_URL unset: nothing will ever publish them, so age alone decides.
        (False, {"recent published", "recent unpublished"}),
    ],
)
async def test_events_past_retention_are_purged_but_not_before_they_were_published(database, delivered, kept):
    events = await _events(database)
    async with database.sessionmaker() as session:
        removed = await maintenance.purge_expired(
            session=session, idempotency_ttl=timedelta(days=1), event_retention=RETENTION, events_delivered=delivered
        )

    assert removed == 4 - len(kept)
    assert await _left(database, events) == kept


async def test_the_periodic_housekeeping_purges_events_too(app_client):
    # Every second, on an app whose relay cannot reach NATS: the old event it could not publish stays.
    async with app_client(cleanup_interval_seconds=1, nats_url=f"nats://127.0.0.1:{free_port()}") as client:
        database = client.app.state.database
        events = await _events(database)
        kept = {"old unpublished", "recent published", "recent unpublished"}

        async def purged() -> bool:
            return await _left(database, events) == kept

        await eventually(purged, "the old published event is still there")
