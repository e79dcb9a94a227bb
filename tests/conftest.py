"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL (+ Redis), and an app client on it.

PostgreSQL and Redis are used when TEST_DATABASE_URL and TEST_REDIS_URL are set (CI sets both), NATS JetStream
when TEST_NATS_URL is; otherwise those tests skip with the reason. With SHOP_TEST_REQUIRE_SERVICES=1 an
unreachable service fails the run.
Every PostgreSQL case carries the `postgres` marker: `-m "not postgres"` runs the suite on SQLite alone.
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
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from httpx import ASGITransport
from hypothesis import settings
from sqlalchemy import make_url, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from auth.roles import Role
from config import Settings
from database.connection import Database
from main import create_app
from models import Base
from tests.helpers import AppClient, signed_in

if TYPE_CHECKING:
    from tests.jetstream import JetStreamTarget
    from tests.smtp_server import SmtpServer

# Every Hypothesis test runs the same examples each time (derandomize), in CI and on any machine, with no time
# limit per example (a stalled machine is no failure) and no example database to make one run differ from the
# next. derandomize also overrides --hypothesis-seed: to explore, run Hypothesis' own random profile,
# `pytest --hypothesis-profile=default` (with `--hypothesis-seed=N` to replay), or register a profile of your own.
settings.register_profile("shop", deadline=None, derandomize=True, database=None, max_examples=50)
settings.load_profile("shop")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


def _redis_url_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist each worker flushes a Redis database of its own: gw0 the configured one, gw1 the one below.

    Workers share the PostgreSQL server too, but each creates a database with a random name (postgres_url).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if not url or worker == "gw0":
        return url
    parsed = urlsplit(url)
    database = int(parsed.path.lstrip("/") or 0) - int(worker.removeprefix("gw"))
    if database < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL's database number is too low for worker {worker}")
    return urlunsplit(parsed._replace(path=f"/{database}"))


TEST_REDIS_URL = _redis_url_of_this_worker(os.environ.get("TEST_REDIS_URL"))
TEST_NATS_URL = os.environ.get("TEST_NATS_URL")
REQUIRE_SERVICES = os.environ.get("SHOP_TEST_REQUIRE_SERVICES") == "1"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
BASE_URL = "http://shop.test"
# For tests whose subject does not depend on the database: their `backend`, and so `client`, is SQLite alone.
# `pytestmark = sqlite_only` on a module, or `@sqlite_only` on a test.
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


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


def _unreachable(what: str, variable: str, error: Exception) -> None:
    reason = f"{what} at {variable} is unreachable: {error}"
    if REQUIRE_SERVICES:
        pytest.fail(reason)
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
        _unreachable("PostgreSQL", "TEST_DATABASE_URL", error)
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


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The NATS server with JetStream that the tests publish to (TEST_NATS_URL)."""
    if not TEST_NATS_URL:
        _unavailable("NATS JetStream", "TEST_NATS_URL")
    return TEST_NATS_URL  # type: ignore[return-value]


@pytest.fixture
async def jetstream(nats_url: str) -> AsyncIterator["JetStreamTarget"]:
    """A stream and subject prefix of this test's own on TEST_NATS_URL, deleted afterwards."""
    from tests.jetstream import JetStreamTarget

    suffix = uuid.uuid4().hex[:12]
    target = JetStreamTarget(nats_url, stream=f"test-{suffix}", subject_prefix=f"t{suffix}")
    try:
        await target.messages()
    except Exception as error:
        _unreachable("NATS", "TEST_NATS_URL", error)
    yield target
    await target.delete()


def _emptying_script() -> str:
    """Delete every row and restart every sequence, as TRUNCATE ... RESTART IDENTITY would, in one round trip.

    On the few rows a test leaves, DELETE takes a fifth of TRUNCATE's time (which makes new files for each table),
    and this runs before every PostgreSQL case.
    """
    dialect = postgresql.dialect()
    deletes = [str(table.delete().compile(dialect=dialect)) for table in reversed(Base.metadata.sorted_tables)]
    return "; ".join([*deletes, "SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"])


EMPTYING_SCRIPT = _emptying_script()


async def _empty_tables(url: str) -> None:
    # A bare asyncpg connection: an engine would first spend several round trips learning about the server.
    connection = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        # One simple-protocol message, so one implicit transaction: all tables are emptied, or none.
        await connection.execute(EMPTYING_SCRIPT)
    finally:
        await connection.close()


async def _flush_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    except Exception as error:
        _unreachable("Redis", "TEST_REDIS_URL", error)
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
            # No expiry sweeps in the background of tests that count statements; expiry tests ask for them.
            "order_expiry_check_seconds": 3600,
            # The concurrency tests' storms, beside a second xdist worker on a small machine, can keep a revocation
            # check from its turn on the event loop for over a second: that would be a 503 no test is about.
            "redis_timeout_seconds": 10.0,
        }
        values.update(overrides)
        return Settings(**values)


def _sqlite_copy(template: Path, folder: Path) -> Backend:
    path = folder / "shop.db"
    shutil.copyfile(template, path)
    return Backend("sqlite", f"sqlite+aiosqlite:///{path}", None)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    url = request.getfixturevalue("postgres_url")
    redis = request.getfixturevalue("redis_url")
    await _empty_tables(url)
    if redis:
        await _flush_redis(redis)
    return Backend("postgres", url, redis)


@pytest.fixture
async def sqlite_backend(tmp_path: Path, sqlite_template: Path) -> Backend:
    """For tests that are about SQLite itself."""
    return _sqlite_copy(sqlite_template, tmp_path)


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
def smtp() -> Iterator["SmtpServer"]:
    """A real SMTP server; `app_client(**smtp.settings)` sends the app's mail to it."""
    # Imported here: it takes its free port from tests/servers.py, which imports this module.
    from tests.smtp_server import smtp_server

    with smtp_server() as server:
        yield server


AppClientFactory = Callable[..., AbstractAsyncContextManager[AppClient]]


@pytest.fixture
def app_client(backend: Backend) -> AppClientFactory:
    """`async with app_client(**settings_overrides) as client:` an app with its lifespan running."""

    @asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[AppClient]:
        app = create_app(backend.settings(**overrides))
        async with (
            LifespanManager(app) as manager,
            AppClient(app, transport=ASGITransport(app=manager.app), base_url=BASE_URL) as client,
        ):
            yield client

    return open_client


@pytest.fixture
async def client(app_client: AppClientFactory) -> AsyncIterator[AppClient]:
    async with app_client() as opened:
        yield opened


@pytest.fixture
async def admin_headers(client: AppClient) -> dict[str, str]:
    headers, _ = await signed_in(client, Role.ADMIN)
    return headers


@pytest.fixture
async def user_headers(client: AppClient) -> dict[str, str]:
    headers, _ = await signed_in(client)
    return headers


@pytest.fixture
async def guest_headers(client: AppClient) -> dict[str, str]:
    headers, _ = await signed_in(client, Role.GUEST)
    return headers
