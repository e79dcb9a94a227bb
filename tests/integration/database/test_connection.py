"""The unit of work: write_transaction commits or rolls back as a whole; ending a read never commits changes."""

import pytest
from sqlalchemy import func, select

from database.connection import release_connection, write_transaction
from models import Category


async def _add_then_fail(session, name: str) -> None:
    async with write_transaction(session):
        session.add(Category(name=name, slug=name.lower()))
        await session.flush()
        raise RuntimeError("boom")


async def test_write_transaction_commits_everything_or_nothing(session):
    async with write_transaction(session):
        session.add(Category(name="Kept", slug="kept"))
    with pytest.raises(RuntimeError, match="boom"):
        await _add_then_fail(session, "Dropped")
    names = (await session.scalars(select(Category.name))).all()
    assert names == ["Kept"]


async def test_ending_a_read_refuses_to_commit_pending_changes(session):
    await session.execute(select(func.count()).select_from(Category))
    session.add(Category(name="Stray", slug="stray"))
    with pytest.raises(RuntimeError, match="outside a write transaction"):
        await release_connection(session)
    session.expunge_all()
    assert (await session.execute(select(func.count()).select_from(Category))).scalar_one() == 0
