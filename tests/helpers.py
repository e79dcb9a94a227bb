"""Small helpers that create users, catalogue entries and orders through the API; a test states only what matters."""

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from auth.roles import Role
from models import Product, User

PASSWORD = "correct-horse-battery"
_sequence = itertools.count(1)
LOCK_WAITERS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)
# Guards a test whose tasks never block or finish; no speed is asserted.
LOCK_WAIT_DEADLINE_SECONDS = 30


def unique(prefix: str) -> str:
    return f"{prefix}{next(_sequence)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


async def mail_sent(client: AsyncClient) -> None:
    """Wait until the app has sent (or given up on) every mail queued so far."""
    await client.app.state.mailer.drain()  # type: ignore[attr-defined]


async def set_role(client: AsyncClient, user_id: int, role: Role) -> None:
    """Change a role straight in the database (the API needs an admin to do it, and the first admin needs this)."""
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
        user = await session.get(User, user_id)
        assert user is not None
        user.role = role
        await session.commit()


async def signed_in(client: AsyncClient, role: Role = Role.USER) -> tuple[dict[str, str], dict[str, Any]]:
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


async def stocks(client: AsyncClient, *product_ids: int) -> list[int]:
    """Stock as the database has it, in the order asked."""
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
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
