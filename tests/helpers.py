"""Helpers for tests: a client on one app, data made through the API, and checks of what a client gets back.

A test states only what matters to it; everything else here has a sensible default.
"""

import asyncio
import functools
import itertools
import re
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from auth.roles import Role
from database.connection import write_transaction
from models import Base, Product, User

PASSWORD = "correct-horse-battery"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "request_id"}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_sequence = itertools.count(1)
LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
# Guards a test whose tasks never block or finish; no speed is asserted.
LOCK_WAIT_DEADLINE_SECONDS = 30


class AppClient(AsyncClient):
    """An httpx client on one app, which it keeps as `app` for tests that look inside (state, settings, routes)."""

    def __init__(self, app: FastAPI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app


def unique(prefix: str) -> str:
    return f"{prefix}{next(_sequence)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Data, made through the API (or, where the API cannot, straight in the app's database)


async def register(client: AsyncClient, *, username: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    username = username or unique("user")
    response = await client.post(
        "/api/v1/auth/register", json={"username": username, "email": f"{username}@example.com", "password": password}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def login(client: AsyncClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def mail_sent(client: AppClient) -> None:
    """Wait until the app has sent (or given up on) every mail queued so far."""
    await client.app.state.mailer.drain()


async def set_role(client: AppClient, user_id: int, role: Role) -> None:
    """Change a role straight in the database (the API needs an admin to do it, and the first admin needs this)."""
    # Through the unit of work, as the app writes: on SQLite it takes the write lock up front, so it queues behind
    # a writer (an expiry sweep, say) instead of failing with "database is locked".
    async with client.app.state.database.sessionmaker() as session, write_transaction(session):
        user = await session.get(User, user_id)
        assert user is not None
        user.role = role


async def signed_in(client: AppClient, role: Role = Role.USER) -> tuple[dict[str, str], dict[str, Any]]:
    """A new account with `role`: its Authorization headers and its user body."""
    user = await register(client)
    if role is not Role.USER:
        await set_role(client, user["id"], role)
        user["role"] = role.value
    tokens = await login(client, user["username"])
    return bearer(tokens["access_token"]), user


async def create_category(client: AsyncClient, admin: dict[str, str], name: str | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/categories", json={"name": name or unique("Category ")}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def create_product(
    client: AsyncClient,
    admin: dict[str, str],
    *,
    name: str | None = None,
    price: str | Decimal = "10.00",
    stock: int = 10,
    category_id: int | None = None,
    description: str = "",
) -> dict[str, Any]:
    body = {
        "name": name or unique("Product "),
        "price": str(price),
        "stock": stock,
        "category_id": category_id,
        "description": description,
    }
    response = await client.post("/api/v1/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def place_order(client: AsyncClient, headers: dict[str, str], items: list[tuple[int, int]], **kwargs: Any) -> Any:
    body = {"items": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in items]}
    return await client.post("/api/v1/orders", json=body, headers=headers, **kwargs)


# What the database holds


async def stocks(client: AppClient, *product_ids: int) -> list[int]:
    """Stock as the database has it, in the order asked."""
    async with client.app.state.database.sessionmaker() as session:
        query = select(Product.id, Product.stock).where(Product.id.in_(product_ids))
        found = dict((await session.execute(query)).all())
    return [found[product_id] for product_id in product_ids]


async def wait_for_lock_waiters(engine: AsyncEngine, tasks: Sequence[asyncio.Future[Any]]) -> None:
    """On PostgreSQL, return once every one of `tasks` waits for a lock in the database, or is done.

    So a test knows a transaction is blocked before it lets the blocking one go. SQLite has no lock waits to
    see (its writers queue on the file lock); there this returns at once.
    """
    if engine.dialect.name != "postgresql":
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_DEADLINE_SECONDS
    async with engine.connect() as observer:
        while not all(task.done() for task in tasks) and loop.time() < deadline:
            waiting = await observer.scalar(LOCK_WAITERS)
            # pg_stat_activity is a snapshot per transaction; end it so the next poll looks again.
            await observer.rollback()
            if waiting >= len(tasks):
                return
            await asyncio.sleep(0.01)


def write_first(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, write: Callable[[AsyncSession], Awaitable[Any]]
) -> None:
    """Make the repository function `module.name(session, ...)` run `write(session)` just before it.

    A conflicting row then lands after every check the service made, in its transaction, as a racing writer's
    committed row would: only the database's constraint stands between it and the service's write.
    """
    original = getattr(module, name)

    @functools.wraps(original)
    async def after_the_write(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
        await write(session)
        return await original(session, *args, **kwargs)

    monkeypatch.setattr(module, name, after_the_write)


async def row_counts(client: AppClient, *tables: str) -> dict[str, int]:
    """How many rows each table holds, read straight from the app's database."""
    async with client.app.state.database.sessionmaker() as session:
        return {
            table: (await session.execute(select(func.count()).select_from(Base.metadata.tables[table]))).scalar_one()
            for table in tables
        }


async def catalogue(client: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything a client can see of the catalogue (up to 100 of each), to compare before and after a request."""
    categories = await client.get("/api/v1/categories", params={"size": 100}, headers=headers)
    products = await client.get("/api/v1/products", params={"size": 100}, headers=headers)
    assert categories.status_code == products.status_code == 200
    return {"categories": categories.json(), "products": products.json()}


# What a client gets back


def assert_problem(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`response` is RFC 9457 problem details with all six members, for `status` (and `code`, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["type"] == "about:blank"
    assert body["title"] == HTTPStatus(status).phrase
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert SNAKE_CASE.fullmatch(body["code"]), body["code"]
    assert body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_invalid(response: Response, *loc: str | int) -> dict[str, Any]:
    """A 422 whose errors all point into the request, one of them at `loc` (or under it)."""
    body = assert_problem(response, 422)
    assert body["errors"], body
    for error in body["errors"]:
        assert error["loc"][0] in {"body", "query", "path", "header"}, error
        assert isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    assert any(tuple(error["loc"][: len(loc)]) == loc for error in body["errors"]), (loc, body["errors"])
    return body
