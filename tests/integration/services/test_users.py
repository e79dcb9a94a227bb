"""services/users.py: registration's conflicts, by the unique indexes even when the check ahead passed.

The conflicting account is added past the service's check (see write_first), as a racing registration would be,
so only the index and its entry in database/violations.py can tell username from email.
"""

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth.security import PasswordHasher
from database.repositories import users as users_repo
from models import User
from services import users as users_service
from services.errors import ConflictError
from tests.helpers import write_first


def racing_user(username: str, email: str):
    async def write(session: AsyncSession) -> None:
        values = {"username": username, "email": email, "hashed_password": "x" * 60, "role": "user"}
        await session.execute(insert(User).values(is_active=True, **values))

    return write


@pytest.mark.parametrize(
    ("racer", "code"),
    [
        (("ALICE", "racer@example.com"), "username_taken"),
        (("racer", "Alice@Example.COM"), "email_taken"),
    ],
    ids=["username", "email"],
)
async def test_identity_taken_after_the_check_is_refused_with_its_own_code(database, monkeypatch, racer, code):
    write_first(monkeypatch, users_repo, "add_user", racing_user(*racer))
    hasher = PasswordHasher(rounds=4, concurrency=1)
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await users_service.register_user(
                session=session, hasher=hasher, username="alice", email="alice@example.com", password="secret-enough"
            )
        assert refused.value.code == code
        assert await session.scalar(select(func.count()).select_from(User)) == 0
