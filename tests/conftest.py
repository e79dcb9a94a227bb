"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL (+ Redis), and an app client on it.

PostgreSQL and Redis are used when TEST_DATABASE_URL and TEST_REDIS_URL are set (CI sets both); otherwise
those tests skip with the reason. With SHOP_TEST_REQUIRE_SERVICES=1 an unreachable service fails the run.
"""

import os

os.environ["ENVIRONMENT"] = "test"
# Importing `main` builds the module-level app from the environment; keep it off any developer's database.
os.environ.setdefault("DATABASE_URL", "sqlite+aiosqlite:///:memory:")

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from config import Settings
from database.connection import Database
from main import create_app
from models import Base
from tests.smtp_server import SmtpServer, smtp_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("SHOP_TEST_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", "postgres"]


def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Run blocking set-up (Alembic's own asyncio.run included) beside whatever event loop is running."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(function, *args).result()


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "database" / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def migrate(database_url: str) -> None:
    """Build the schema the way production does: Alembic, from an empty database."""
    in_thread(command.upgrade, alembic_config(database_url), "head")


def _unavailable(what: str, variable: str) -> None:
    reason = f"{what} not configured: set {variable} to run these tests"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (SHOP_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "shop.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


async def _admin_execute(admin_url: str, *statements: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of our own on the configured server, migrated once; tests empty it before each use."""
    if not TEST_DATABASE_URL:
        _unavailable("PostgreSQL", "TEST_DATABASE_URL")
    name = f"shop_test_{uuid.uuid4().hex[:12]}"
    admin_url = TEST_DATABASE_URL
    try:
        in_thread(asyncio.run, _admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as error:
        if REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {error}")
        pytest.skip(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {error}")
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    in_thread(asyncio.run, _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    if not TEST_REDIS_URL:
        if REQUIRE_SERVICES:
            pytest.fail("TEST_REDIS_URL is not set (SHOP_TEST_REQUIRE_SERVICES=1)")
        return None
    return TEST_REDIS_URL


async def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


async def _flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    except Exception as error:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis at TEST_REDIS_URL is unreachable: {error}")
        pytest.skip(f"Redis at TEST_REDIS_URL is unreachable: {error}")
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Backend:
    """Where one test's data lives: a fresh SQLite file, or the emptied PostgreSQL database plus Redis."""

    name: str
    database_url: str
    redis_url: str | None

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "bcrypt_rounds": 4,
            "rate_limit_enabled": False,
            "secret_key": "test-secret-key-that-is-long-enough-for-hs256",
            "log_level": "WARNING",
            "database_pool_size": 5,
            "database_max_overflow": 20,
        }
        values.update(overrides)
        return Settings(**values)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "shop.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return Backend("sqlite", f"sqlite+aiosqlite:///{path}", None)
    url = request.getfixturevalue("postgres_url")
    redis = request.getfixturevalue("redis_url")
    await _truncate_all(url)
    if redis:
        await _flush_redis(redis)
    return Backend("postgres", url, redis)


@pytest.fixture
async def sqlite_backend(tmp_path: Path, sqlite_template: Path) -> Backend:
    """For tests that are about SQLite itself."""
    path = tmp_path / "shop.db"
    shutil.copyfile(sqlite_template, path)
    return Backend("sqlite", f"sqlite+aiosqlite:///{path}", None)


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    """The app's own engine set-up on the test's backend (SQLite gets the app's Unicode case folding)."""
    opened = Database(backend.settings())
    try:
        yield opened
    finally:
        await opened.dispose()


@pytest.fixture
async def session(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessionmaker() as opened:
        yield opened


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server; `app_client(**smtp.settings)` sends the app's mail to it."""
    with smtp_server() as server:
        yield server


AppClientFactory = Callable[..., Any]


@pytest.fixture
def app_client(backend: Backend) -> AppClientFactory:
    """`async with app_client(**settings_overrides) as client:` an app with its lifespan running."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[AsyncClient]:
        app = create_app(backend.settings(**overrides))
        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://shop.test") as client,
        ):
            client.app = app  # type: ignore[attr-defined]
            yield client

    return open_client


@pytest.fixture
async def client(app_client: AppClientFactory) -> AsyncIterator[AsyncClient]:
    async with app_client() as opened:
        yield opened


@pytest.fixture
async def admin_headers(client: AsyncClient) -> dict[str, str]:
    from auth.roles import Role
    from tests.helpers import signed_in

    headers, _ = await signed_in(client, Role.ADMIN)
    return headers


@pytest.fixture
async def user_headers(client: AsyncClient) -> dict[str, str]:
    from tests.helpers import signed_in

    headers, _ = await signed_in(client)
    return headers


@pytest.fixture
async def guest_headers(client: AsyncClient) -> dict[str, str]:
    from auth.roles import Role
    from tests.helpers import signed_in

    headers, _ = await signed_in(client, Role.GUEST)
    return headers
