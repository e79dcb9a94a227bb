"""Two server processes (scripts/start.sh) on one PostgreSQL and one Redis: limits, logout, ended sessions and stock
hold across them.

They start together on an empty database, as the instances of a deploy do: their migrations must take turns.
"""

import ast
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from alembic.script import ScriptDirectory
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.conftest import PROJECT_ROOT, REQUIRE_SERVICES, TEST_DATABASE_URL, TEST_REDIS_URL, alembic_config, in_thread
from tests.helpers import PASSWORD, bearer, unique, wait_for_lock_waiters
from tests.prometheus_text import sample_value
from tests.servers import START_SECONDS, Server, free_port, launch, stop, wait_until_ready
from tests.smtp_server import Inbox, smtp_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

START_SCRIPT = PROJECT_ROOT / "scripts" / "start.sh"
DEFAULT_LIMIT = 5
SECRET_KEY = "one-signing-key-shared-by-every-process-of-the-test"
ADMIN = {"username": "opsadmin", "email": "opsadmin@example.com", "password": "ops-admin-password"}


@dataclass(frozen=True)
class Deployment:
    a: Server
    b: Server
    """Two gunicorn workers, with PROMETHEUS_MULTIPROC_DIR."""
    database_url: str
    metrics_dir: Path
    stale_metrics: Path
    queued_migrations: int
    """How many `alembic upgrade head` were seen waiting at once for the migration lock."""
    inbox: Inbox
    """Where both processes send their mail."""


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (SHOP_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _services() -> tuple[str, str]:
    if not (TEST_DATABASE_URL and TEST_REDIS_URL):
        _unavailable("several processes need a shared PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL")
    return TEST_DATABASE_URL, TEST_REDIS_URL  # type: ignore[return-value]


async def _admin_execute(url: str, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def _empty_database() -> Iterator[str]:
    """A database of our own with no schema at all, as a first deploy finds it."""
    admin_url, _ = _services()
    name = f"shop_ops_{uuid.uuid4().hex[:12]}"
    try:
        in_thread(asyncio.run, _admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as error:
        _unavailable(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {error}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        in_thread(asyncio.run, _admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as error:
        _unavailable(f"Redis at TEST_REDIS_URL is unreachable: {error}")
    finally:
        client.close()


def _start(name: str, *, database_url: str, redis_url: str, workers: int, log: Path, **extra: str) -> Server:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "PYTHON": sys.executable,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET_KEY,
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_DEFAULT": f"{DEFAULT_LIMIT}/minute",
        # Sign-ups and refreshes are many here and all from 127.0.0.1; the default limit is the one under test.
        "RATE_LIMIT_AUTH": "100000/minute",
        "LOG_LEVEL": "INFO",
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
        **extra,
    }
    return launch(name, [str(START_SCRIPT)], env=env, log=log, port=port)


def _migration_lock_id() -> int:
    """The advisory lock id that database/migrations/env.py takes (importing env.py would run a migration)."""
    tree = ast.parse((PROJECT_ROOT / "database" / "migrations" / "env.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(target, "id", None) == "MIGRATION_LOCK_ID" for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("database/migrations/env.py defines no MIGRATION_LOCK_ID")


WAITING_FOR_ADVISORY_LOCKS = text(
    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = :database"
)


async def _start_behind_migration_lock(database_url: str, start: Callable[[], list[Server]]) -> int:
    """Call `start` while holding the migrators' lock; return how many migrations queued behind it at once.

    Holding the lock makes sure every instance is migrating at the same moment, whatever the machine's speed.
    """
    engine = create_async_engine(database_url)
    lock = {"id": _migration_lock_id()}
    try:
        async with engine.connect() as holder, engine.connect() as observer:
            await holder.execute(text("SELECT pg_advisory_lock(:id)"), lock)
            servers = start()
            deadline = time.monotonic() + START_SECONDS
            database = {"database": make_url(database_url).database}
            while (queued := await observer.scalar(WAITING_FOR_ADVISORY_LOCKS, database)) < len(servers):
                if any(server.process.poll() is not None for server in servers) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            await holder.execute(text("SELECT pg_advisory_unlock(:id)"), lock)
            return queued
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    _, redis_url = _services()
    _flush_redis(redis_url)
    folder = tmp_path_factory.mktemp("multiprocess")
    metrics_dir = folder / "metrics"
    metrics_dir.mkdir()
    stale_metrics = metrics_dir / "counter_1.db"
    stale_metrics.write_bytes(b"left behind by an earlier run")
    with _empty_database() as database_url, smtp_server() as smtp:
        servers: list[Server] = []
        mail = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false"}
        common = {"database_url": database_url, "redis_url": redis_url, **mail}

        def start() -> list[Server]:
            servers.append(_start("A", workers=1, log=folder / "a.log", **common))
            metrics = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
            servers.append(_start("B", workers=2, log=folder / "b.log", **common, **metrics))
            return servers

        try:
            queued = in_thread(asyncio.run, _start_behind_migration_lock(database_url, start))
            for server in servers:
                wait_until_ready(server)
            yield Deployment(servers[0], servers[1], database_url, metrics_dir, stale_metrics, queued, smtp.inbox)
        finally:
            stop(servers)


async def sign_up(http: httpx.AsyncClient, server: Server, username: str | None = None) -> dict[str, Any]:
    """A new user's token pair, obtained from `server`."""
    username = username or unique("mp")
    registered = await http.post(
        server.url("/api/v1/auth/register"),
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    login = await http.post(server.url("/api/v1/auth/login"), json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return login.json()


@pytest.mark.parametrize("client", ["user", "ip"])
async def test_rate_limit_counts_requests_on_every_process(deployment, client):
    servers = cycle([deployment.a, deployment.b])
    async with httpx.AsyncClient(timeout=30) as http:
        if client == "user":
            headers = [bearer((await sign_up(http, deployment.a))["access_token"])] * (DEFAULT_LIMIT + 2)
            allowed = 200
        else:
            # Unauthenticated, so counted per client IP; a forged X-Forwarded-For must not make a new client.
            headers = [{"X-Forwarded-For": f"198.51.100.{n}"} for n in range(DEFAULT_LIMIT + 2)]
            allowed = 401
        responses = [await http.get(next(servers).url("/api/v1/users/me"), headers=each) for each in headers]

    assert [response.status_code for response in responses] == [allowed] * DEFAULT_LIMIT + [429, 429]
    remaining = [int(response.headers["RateLimit-Remaining"]) for response in responses[:DEFAULT_LIMIT]]
    assert remaining == list(range(DEFAULT_LIMIT - 1, -1, -1))
    for refused in responses[DEFAULT_LIMIT:]:
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["code"] == "rate_limited"


async def test_logout_on_one_process_revokes_on_the_other(deployment):
    a, b = deployment.a, deployment.b
    async with httpx.AsyncClient(timeout=30) as http:
        tokens = await sign_up(http, a)
        access = bearer(tokens["access_token"])
        before = await http.get(b.url("/api/v1/users/me"), headers=access)
        logout = await http.post(
            a.url("/api/v1/auth/logout"), json={"refresh_token": tokens["refresh_token"]}, headers=access
        )
        after = await http.get(b.url("/api/v1/users/me"), headers=access)
        refresh = await http.post(b.url("/api/v1/auth/refresh"), json={"refresh_token": tokens["refresh_token"]})

    assert (before.status_code, logout.status_code) == (200, 204)
    assert after.status_code == 401
    assert after.headers["WWW-Authenticate"].startswith("Bearer")
    assert refresh.status_code == 401


# Ten of each (direction, kind) pair, eight at a time: enough that the rotation and the revocation overlap on
# the two processes again and again; test_refresh_families races the same in one process, on both backends.
REFRESH_RACES = 40
RACES_AT_ONCE = 8


async def _family_outlives_revocation(http: httpx.AsyncClient, rotating: Server, revoking: Server, kind: str) -> bool:
    """Rotate a new family's live token on one process while the other revokes the family, by reuse of its used
    token or by a logout naming it: whether the family's newest token still rotates afterwards (it must not).
    """
    first = await sign_up(http, rotating)
    second = await http.post(rotating.url("/api/v1/auth/refresh"), json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    if kind == "reuse":
        revoke = http.post(revoking.url("/api/v1/auth/refresh"), json={"refresh_token": first["refresh_token"]})
    else:
        revoke = http.post(
            revoking.url("/api/v1/auth/logout"),
            json={"refresh_token": second["refresh_token"]},
            headers=bearer(second["access_token"]),
        )
    rotated, revoked = await asyncio.gather(
        http.post(rotating.url("/api/v1/auth/refresh"), json={"refresh_token": second["refresh_token"]}), revoke
    )
    assert revoked.status_code == (401 if kind == "reuse" else 204), revoked.text
    assert rotated.status_code in (200, 401), rotated.text
    newest = rotated.json()["refresh_token"] if rotated.status_code == 200 else second["refresh_token"]
    check = await http.post(revoking.url("/api/v1/auth/refresh"), json={"refresh_token": newest})
    return check.status_code != 401


async def test_a_family_revoked_on_one_process_never_rotates_on_the_other(deployment):
    pairs = cycle([(deployment.a, deployment.b), (deployment.b, deployment.a)])
    kinds = cycle(["reuse", "reuse", "logout", "logout"])
    gate = asyncio.Semaphore(RACES_AT_ONCE)

    async def race(rotating: Server, revoking: Server, kind: str) -> tuple[str, bool]:
        async with gate:
            return kind, await _family_outlives_revocation(http, rotating, revoking, kind)

    async with httpx.AsyncClient(timeout=60) as http:
        results = await asyncio.gather(*(race(*next(pairs), next(kinds)) for _ in range(REFRESH_RACES)))

    # Races lost, by kind: families that outlived their revocation.
    assert Counter(kind for kind, alive in results if alive) == {}


async def test_orders_split_across_processes_never_oversell(deployment):
    stock, buyers, orders_each = 5, 4, 3
    a, b = deployment.a, deployment.b
    async with httpx.AsyncClient(timeout=60) as http:
        # The admin came from ADMIN_* at start-up, created once although both processes tried.
        login = await http.post(a.url("/api/v1/auth/login"), json={k: ADMIN[k] for k in ("username", "password")})
        assert login.status_code == 200, login.text
        admin = bearer(login.json()["access_token"])
        created = await http.post(
            b.url("/api/v1/products"), json={"name": unique("Scarce "), "price": "9.99", "stock": stock}, headers=admin
        )
        assert created.status_code == 201, created.text
        product_id = created.json()["id"]
        tokens = [await sign_up(http, server) for server, _ in zip(cycle([a, b]), range(buyers), strict=False)]
        attempts = [
            http.post(
                server.url("/api/v1/orders"),
                json={"items": [{"product_id": product_id, "quantity": 1}]},
                headers=bearer(pair["access_token"]),
            )
            for server, pair in zip(cycle([a, b]), tokens * orders_each, strict=False)
        ]
        responses = await asyncio.gather(*attempts)
        left = (await http.get(a.url(f"/api/v1/products/{product_id}"), headers=admin)).json()["stock"]

    placed = [response for response in responses if response.status_code == 201]
    refused = [response for response in responses if response.status_code != 201]
    assert len(placed) == stock
    # Refused only for lack of stock, never for lock contention between the processes.
    assert {(response.status_code, response.json()["code"]) for response in refused} == {(409, "insufficient_stock")}
    assert left == 0
    engine = create_async_engine(deployment.database_url)
    try:
        async with engine.connect() as connection:
            sold = await connection.scalar(
                text("SELECT coalesce(sum(quantity), 0) FROM order_items WHERE product_id = :id"), {"id": product_id}
            )
    finally:
        await engine.dispose()
    assert sold == stock


async def test_metrics_add_up_every_worker(deployment):
    checks = 12
    labels = {"method": "GET", "handler": "/health", "status": "200"}
    # No keep-alive: each request is a new connection, which any of B's two workers may accept.
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        before = (await http.get(deployment.b.url("/metrics"))).text
        for _ in range(checks):
            assert (await http.get(deployment.b.url("/health"))).status_code == 200
        after = await http.get(deployment.b.url("/metrics"))

    assert after.status_code == 200
    assert (
        sample_value(after.text, "http_requests_total", **labels)
        - sample_value(before, "http_requests_total", **labels)
        == checks
    )
    assert sample_value(after.text, "http_requests_in_flight") == 1
    # start.sh emptied the directory of an earlier run's files, and the workers now keep their counts there.
    assert not deployment.stale_metrics.exists()
    assert list(deployment.metrics_dir.glob("counter_*.db"))


async def test_instances_starting_together_migrate_in_turn(deployment):
    # Both start.sh ran `alembic upgrade head` on the empty database at the same moment, queued on the lock...
    assert deployment.queued_migrations == 2
    # ...and both succeeded: start.sh serves only after a successful migration.
    assert [server.process.poll() for server in (deployment.a, deployment.b)] == [None, None]
    engine = create_async_engine(deployment.database_url)
    try:
        async with engine.connect() as connection:
            versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    finally:
        await engine.dispose()
    # What head builds is the models' schema: tests/unit/models/test_migrations.py.
    assert versions == [ScriptDirectory.from_config(alembic_config(deployment.database_url)).get_current_head()]


async def sign_up_admin(http: httpx.AsyncClient, server: Server, engine: AsyncEngine) -> tuple[int, dict[str, str]]:
    """A new admin's id and headers: signed up on `server`, promoted straight in the database, then logged in."""
    username = unique("mpadmin")
    registered = await http.post(
        server.url("/api/v1/auth/register"),
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE users SET role = 'admin' WHERE id = :id"), {"id": user_id})
    login = await http.post(server.url("/api/v1/auth/login"), json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return user_id, bearer(login.json()["access_token"])


ACTIVE_ADMINS = text("SELECT count(*) FROM users WHERE id IN (:a, :b) AND role = 'admin' AND is_active")


async def test_admins_on_two_processes_demoting_each_other_leave_one_admin(deployment):
    a, b = deployment.a, deployment.b
    engine = create_async_engine(deployment.database_url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(20):
                first_id, first = await sign_up_admin(http, a, engine)
                second_id, second = await sign_up_admin(http, b, engine)

                responses = await asyncio.gather(
                    http.patch(a.url(f"/api/v1/users/{second_id}"), json={"role": "user"}, headers=first),
                    http.patch(b.url(f"/api/v1/users/{first_id}"), json={"role": "user"}, headers=second),
                )

                assert sorted(r.status_code for r in responses) == [200, 403], [r.text for r in responses]
                refused = next(response for response in responses if response.status_code == 403)
                assert refused.json()["code"] == "insufficient_role"
                async with engine.connect() as connection:
                    assert await connection.scalar(ACTIVE_ADMINS, {"a": first_id, "b": second_id}) == 1
    finally:
        await engine.dispose()


# Orders expire two seconds after they are placed, swept twice a second by every worker.
PAYMENT_TTL_SECONDS = 2
EXPIRY_CHECK_SECONDS = 0.5
# Guards a wait that went wrong, not a speed requirement.
EXPIRY_WAIT_SECONDS = 60


@dataclass(frozen=True)
class ServerPair:
    a: Server
    b: Server
    database_url: str


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPair]:
    """Two more servers (one worker, and two) on a database of their own, whose orders expire within seconds.

    Apart from `deployment`, whose orders must not expire under its tests; no rate limit, as these tests make
    many requests per user.
    """
    _, redis_url = _services()
    folder = tmp_path_factory.mktemp("expiring")
    with _empty_database() as database_url:
        common = {
            "database_url": database_url,
            "redis_url": redis_url,
            "RATE_LIMIT_ENABLED": "false",
            "ORDER_PAYMENT_TTL_SECONDS": str(PAYMENT_TTL_SECONDS),
            "ORDER_EXPIRY_CHECK_SECONDS": str(EXPIRY_CHECK_SECONDS),
        }
        servers = [
            _start("C", workers=1, log=folder / "c.log", **common),
            _start("D", workers=2, log=folder / "d.log", **common),
        ]
        try:
            for server in servers:
                wait_until_ready(server)
            yield ServerPair(servers[0], servers[1], database_url)
        finally:
            stop(servers)


async def _admin_on(http: httpx.AsyncClient, server: Server) -> dict[str, str]:
    login = await http.post(server.url("/api/v1/auth/login"), json={k: ADMIN[k] for k in ("username", "password")})
    assert login.status_code == 200, login.text
    return bearer(login.json()["access_token"])


async def _new_product(http: httpx.AsyncClient, server: Server, admin: dict[str, str], stock: int) -> int:
    body = {"name": unique("Expiring "), "price": "4.00", "stock": stock}
    created = await http.post(server.url("/api/v1/products"), json=body, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_unpaid_orders_expire_once_across_processes(expiring):
    c, d = expiring.a, expiring.b
    engine = create_async_engine(expiring.database_url)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            admin = await _admin_on(http, c)
            product = await _new_product(http, d, admin, stock=50)
            buyers = [bearer((await sign_up(http, server))["access_token"]) for server in (c, d)]
            placed = []
            for server, buyer in zip(cycle([c, d]), buyers * 4, strict=False):
                response = await http.post(
                    server.url("/api/v1/orders"),
                    json={"items": [{"product_id": product, "quantity": 2}]},
                    headers=buyer,
                )
                assert response.status_code == 201, response.text
                placed.append(response.json())
                if len(placed) == 1:
                    # Paid as soon as placed: on a slow machine the other placements could outlast its deadline.
                    paid = await http.patch(
                        d.url(f"/api/v1/orders/{placed[0]['id']}/status"), json={"status": "paid"}, headers=admin
                    )
                    assert paid.status_code == 200, paid.text

            deadline = time.monotonic() + EXPIRY_WAIT_SECONDS
            ids = {"ids": [order["id"] for order in placed]}
            pending = text("SELECT count(*) FROM orders WHERE id = ANY(:ids) AND status = 'pending'")
            while True:
                async with engine.connect() as connection:
                    if await connection.scalar(pending, ids) == 0:
                        break
                assert time.monotonic() < deadline, "orders still pending"
                await asyncio.sleep(0.2)
            # Several more sweeps by all three workers: nothing comes back twice.
            await asyncio.sleep(6 * EXPIRY_CHECK_SECONDS)

            left = (await http.get(c.url(f"/api/v1/products/{product}"), headers=admin)).json()["stock"]
            shown = [(await http.get(d.url(f"/api/v1/orders/{o['id']}"), headers=admin)).json() for o in placed]
    finally:
        await engine.dispose()

    assert left == 50 - 2
    assert [order["status"] for order in shown] == ["paid"] + ["cancelled"] * 7
    assert {order["expires_at"] for order in shown} == {None}


async def test_racing_writes_with_one_if_match_on_two_processes_give_one_success(expiring):
    c, d = expiring.a, expiring.b
    engine = create_async_engine(expiring.database_url)
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            admin = await _admin_on(http, c)
            for _ in range(10):
                product = await _new_product(http, c, admin, stock=10)
                read = await http.get(d.url(f"/api/v1/products/{product}"), headers=admin)
                body = {name: read.json()[name] for name in ("name", "description", "price", "category_id")}
                conditional = admin | {"If-Match": read.headers["etag"]}
                # Both requests wait behind a lock on the row, so each has passed its checks before either writes.
                async with engine.connect() as holder:
                    await holder.execute(text("SELECT id FROM products WHERE id = :id FOR UPDATE"), {"id": product})
                    racing = [
                        asyncio.ensure_future(
                            http.put(
                                server.url(f"/api/v1/products/{product}"),
                                json=body | {"stock": stock},
                                headers=conditional,
                            )
                        )
                        for server, stock in ((c, 11), (d, 12))
                    ]
                    await wait_for_lock_waiters(engine, racing)
                    await holder.rollback()
                responses = await asyncio.gather(*racing)

                assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
                winner = next(r for r in responses if r.status_code == 200)
                now = await http.get(c.url(f"/api/v1/products/{product}"), headers=admin)
                assert (now.json()["stock"], now.headers["etag"]) == (winner.json()["stock"], winner.headers["etag"])
    finally:
        await engine.dispose()


NEW_PASSWORD = "changed-on-the-other-process"


async def _end_sessions(http: httpx.AsyncClient, deployment: Deployment, how: str, username: str, old: dict) -> str:
    """End every session of the account on process A, by `how`; the password it has afterwards."""
    a = deployment.a
    if how == "password change":
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        changed = await http.post(a.url("/api/v1/users/me/password"), json=body, headers=bearer(old["access_token"]))
        assert changed.status_code == 200, changed.text
        return NEW_PASSWORD
    if how == "sign-out everywhere":
        response = await http.delete(a.url("/api/v1/users/me/sessions"), headers=bearer(old["access_token"]))
        assert response.status_code == 204, response.text
        return PASSWORD
    email = f"{username}@example.com"
    requested = await http.post(a.url("/api/v1/auth/password-reset"), json={"email": email})
    assert requested.status_code == 202, requested.text
    (mail,) = [mail for mail in deployment.inbox.wait_for(email, count=2) if "reset" in mail.subject.lower()]
    body = {"token": mail.token, "new_password": NEW_PASSWORD}
    confirmed = await http.post(a.url("/api/v1/auth/password-reset/confirm"), json=body)
    assert confirmed.status_code == 204, confirmed.text
    return NEW_PASSWORD


@pytest.mark.parametrize("how", ["password change", "password reset", "sign-out everywhere"])
async def test_sessions_ended_on_one_process_end_on_the_other_at_once(deployment, how):
    a, b = deployment.a, deployment.b
    async with httpx.AsyncClient(timeout=30) as http:
        username = unique("ended")
        old = await sign_up(http, b, username)
        assert (await http.get(a.url("/api/v1/users/me"), headers=bearer(old["access_token"]))).status_code == 200

        password = await _end_sessions(http, deployment, how, username, old)

        for server in (b, a):
            stale = await http.get(server.url("/api/v1/users/me"), headers=bearer(old["access_token"]))
            assert stale.status_code == 401, (server.name, stale.text)
        assert (
            await http.post(b.url("/api/v1/auth/refresh"), json={"refresh_token": old["refresh_token"]})
        ).status_code == 401
        login = await http.post(b.url("/api/v1/auth/login"), json={"username": username, "password": password})
        assert login.status_code == 200, login.text
        fresh = bearer(login.json()["access_token"])
        assert (await http.get(a.url("/api/v1/users/me"), headers=fresh)).status_code == 200
