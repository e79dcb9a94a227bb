"""Event ids only ever grow: a feed cursor past the highest one must not skip the events stored after a purge."""

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from models import Event
from services.events import SYSTEM_ACTOR, EventType, record_event


async def _store_one(session: AsyncSession) -> int:
    async with write_transaction(session):
        record_event(
            session, type=EventType.CATEGORY_DELETED, subject="categories/1", actor=SYSTEM_ACTOR, data={"id": 1}
        )
    return await session.scalar(select(func.max(Event.id)))


async def test_an_emptied_events_table_does_not_hand_out_old_ids_again(session: AsyncSession) -> None:
    await _store_one(session)
    highest = await _store_one(session)
    async with write_transaction(session):
        await session.execute(delete(Event))

    assert await _store_one(session) > highest
