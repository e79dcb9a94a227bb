"""Which relay lock a database gets, and the flock's semantics (no database needed)."""

import pytest

from config import Settings
from database.leadership import (
    LOCK_FILE_SUFFIX,
    AdvisoryLockLeadership,
    FileLockLeadership,
    LeadershipLostError,
    SoleProcessLeadership,
    relay_leadership,
)


async def test_in_memory_sqlite_is_alone_and_always_leads():
    leadership = relay_leadership(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    assert isinstance(leadership, SoleProcessLeadership)
    assert await leadership.try_acquire() is True
    await leadership.confirm()
    await leadership.close()


async def test_postgresql_gets_the_advisory_lock():
    leadership = relay_leadership(Settings(environment="test", database_url="postgresql+asyncpg://shop@db/shop"))
    assert isinstance(leadership, AdvisoryLockLeadership)
    await leadership.close()


async def test_a_sqlite_file_gets_an_flock_beside_it_which_one_holder_has_at_a_time(tmp_path):
    settings = Settings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    first, second = relay_leadership(settings), relay_leadership(settings)
    assert isinstance(first, FileLockLeadership)
    try:
        assert await first.try_acquire() is True
        assert await first.try_acquire() is True  # already ours
        assert (tmp_path / f"shop.db{LOCK_FILE_SUFFIX}").exists()
        assert await second.try_acquire() is False
        await first.confirm()
        with pytest.raises(LeadershipLostError):
            await second.confirm()
        await first.release()
        assert await second.try_acquire() is True
    finally:
        await first.close()
        await second.close()
