"""The migration tests' database: empty, on SQLite and on PostgreSQL, for migrations to build step by step."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.conftest import TEST_DATABASE_URL, _admin_execute, _unavailable


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all, for migrations to build step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
        return
    if not TEST_DATABASE_URL:
        _unavailable("PostgreSQL", "TEST_DATABASE_URL")
    name = f"shop_migrations_{uuid.uuid4().hex[:12]}"
    await _admin_execute(TEST_DATABASE_URL, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin_execute(TEST_DATABASE_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
