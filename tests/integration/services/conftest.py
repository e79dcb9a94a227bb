"""Fixtures for the service tests, which call the services straight on a backend's database."""

import pytest

from auth.roles import Role
from database.connection import Database, write_transaction
from database.repositories import users as users_repo
from models import User


@pytest.fixture
async def admin(database: Database) -> User:
    """An active admin, as an admin write's `actor`."""
    async with database.sessionmaker() as session, write_transaction(session):
        return await users_repo.add_user(
            session, username="admin", email="admin@example.com", hashed_password="x" * 60, role=Role.ADMIN
        )
