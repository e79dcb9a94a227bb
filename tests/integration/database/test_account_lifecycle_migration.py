"""Migration 0005 on data: existing accounts and refresh families start unverified, at session generation 0."""

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import alembic_config, in_thread

ACCOUNT = sa.text(
    "INSERT INTO users (id, username, email, hashed_password, role, is_active, created_at, updated_at) "
    "VALUES (1, 'old', 'old@example.com', :hash, 'admin', :yes, '2026-11-30 12:00:00', '2026-11-30 12:00:00')"
)
FAMILY = sa.text("INSERT INTO refresh_token_families (id, user_id, created_at) VALUES ('f', 1, '2026-11-30 12:00:00')")
COLUMNS_OF_0002 = {"id", "username", "email", "hashed_password", "role", "is_active", "created_at", "updated_at"}


async def test_existing_rows_start_at_generation_0_unverified_and_the_downgrade_gives_0002_back(empty_database):
    config = alembic_config(empty_database)
    in_thread(command.upgrade, config, "0002")
    engine = create_async_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(ACCOUNT, {"hash": "x" * 60, "yes": True})
            await connection.execute(FAMILY)

        in_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            user = (
                await connection.execute(sa.text("SELECT email_verified, session_generation, deleted_at FROM users"))
            ).one()
            family = await connection.scalar(sa.text("SELECT session_generation FROM refresh_token_families"))
        assert (bool(user.email_verified), user.session_generation, user.deleted_at, family) == (False, 0, None, 0)

        in_thread(command.downgrade, config, "0002")
        async with engine.connect() as connection:
            columns = await connection.run_sync(lambda sync: sa.inspect(sync).get_columns("users"))
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert {column["name"] for column in columns} == COLUMNS_OF_0002
        assert "account_tokens" not in tables
    finally:
        await engine.dispose()
