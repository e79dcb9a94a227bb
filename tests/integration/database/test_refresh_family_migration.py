"""Migrations on data: 0002 gives every existing refresh token a family, revoked if any of its tokens was."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from models.base import UTCDateTime
from tests.conftest import alembic_config, in_thread

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
users = sa.table("users", *(sa.column(name) for name in ("id", "username", "email", "hashed_password", "role")))
users.append_column(sa.column("is_active", sa.Boolean()))
users.append_column(sa.column("created_at", UTCDateTime()))
users.append_column(sa.column("updated_at", UTCDateTime()))
# The table as revision 0001 made it, revoked_at included.
old_refresh_tokens = sa.table(
    "refresh_tokens",
    sa.column("user_id"),
    sa.column("family_id"),
    sa.column("token_hash"),
    sa.column("created_at", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
    sa.column("used_at", UTCDateTime()),
    sa.column("revoked_at", UTCDateTime()),
)
families = sa.table(
    "refresh_token_families",
    sa.column("id"),
    sa.column("user_id"),
    sa.column("created_at", UTCDateTime()),
    sa.column("revoked_at", UTCDateTime()),
)


def token(family_id: str, number: int, *, revoked: bool) -> dict[str, object]:
    return {
        "user_id": 1,
        "family_id": family_id,
        "token_hash": f"{family_id}-{number}".ljust(64, "0"),
        "created_at": NOW + timedelta(minutes=number),
        "expires_at": NOW + timedelta(days=14),
        "used_at": None,
        "revoked_at": NOW + timedelta(hours=1) if revoked else None,
    }


async def test_families_are_backfilled_from_refresh_tokens_and_given_back_on_downgrade(empty_database):
    config = alembic_config(empty_database)
    in_thread(command.upgrade, config, "0001")
    engine = create_async_engine(empty_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                users.insert().values(
                    id=1,
                    username="old",
                    email="old@example.com",
                    hashed_password="x" * 60,
                    role="user",
                    is_active=True,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            await connection.execute(
                old_refresh_tokens.insert(),
                [
                    token("live", 1, revoked=False),
                    token("live", 2, revoked=False),
                    token("ended", 1, revoked=True),
                    token("ended", 2, revoked=True),
                    # What the race left behind: the family revoked, the token being rotated meanwhile not.
                    token("outlived", 1, revoked=True),
                    token("outlived", 2, revoked=False),
                ],
            )

        in_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            backfilled = (await connection.execute(sa.select(families))).all()
        assert {row.id: (row.user_id, row.created_at, row.revoked_at) for row in backfilled} == {
            "live": (1, NOW + timedelta(minutes=1), None),
            "ended": (1, NOW + timedelta(minutes=1), NOW + timedelta(hours=1)),
            "outlived": (1, NOW + timedelta(minutes=1), NOW + timedelta(hours=1)),
        }

        in_thread(command.downgrade, config, "0001")
        async with engine.connect() as connection:
            restored = await connection.execute(
                sa.select(old_refresh_tokens.c.family_id, old_refresh_tokens.c.revoked_at)
            )
        assert {(family, at is not None) for family, at in restored.all()} == {
            ("live", False),
            ("ended", True),
            ("outlived", True),
        }
    finally:
        await engine.dispose()
