"""SQL statements per request: a small fixed number on every list and on one product, whatever a page holds.

A cursor page is one statement (beside the user lookup): no count, its rows and whether more follow at once.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import Category, Product, User
from tests.helpers import AppClient, create_product, place_order, signed_in, unique

# SQLite's BEGIN goes through the cursor and asyncpg's does not; only statements that touch data are counted.
TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})
FEW, MANY = 1, 50
# Every seeded product matches this filter, so the filtered page holds all of them.
EVERY_FILTER = "category_id={category_id}&q=widget&min_price=1&max_price=10&in_stock=true"


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.split(maxsplit=1)[0].upper() not in TRANSACTION_CONTROL:
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class Case:
    path: str
    table: type[Product | Category | User]
    # The user lookup (beside Redis's revocation check) is one; a page adds its count and its rows, a cursor
    # page only its rows.
    statements: int
    is_list: bool = True


CASES = {
    "products": Case("/api/v1/products?size=100", Product, 3),
    "products filtered": Case(f"/api/v1/products?size=100&{EVERY_FILTER}", Product, 3),
    "products filtered, by price": Case(f"/api/v1/products?size=100&{EVERY_FILTER}&sort=-price", Product, 3),
    "products by name": Case("/api/v1/products?size=100&sort=name", Product, 3),
    "products by created_at": Case("/api/v1/products?size=100&sort=-created_at", Product, 3),
    "categories": Case("/api/v1/categories?size=100", Category, 3),
    "users": Case("/api/v1/users?size=100", User, 3),
    "products, cursor": Case("/api/v1/products?size=100&cursor=", Product, 2),
    "products filtered, by price, cursor": Case(
        f"/api/v1/products?size=100&{EVERY_FILTER}&sort=-price&cursor=", Product, 2
    ),
    "products by created_at, cursor": Case("/api/v1/products?size=100&sort=created_at&cursor=", Product, 2),
    "categories, cursor": Case("/api/v1/categories?size=100&cursor=", Category, 2),
    "users, cursor": Case("/api/v1/users?size=100&cursor=", User, 2),
    "one product": Case("/api/v1/products/{product_id}", Product, 2, is_list=False),
}


def _new_row(table: type[Product | Category | User], category_id: int) -> Product | Category | User:
    name = unique("widget")
    if table is Product:
        return Product(name=name, price=Decimal("5.00"), stock=3, category_id=category_id)
    if table is Category:
        return Category(name=name, slug=name)
    return User(username=name, email=f"{name}@example.com", hashed_password="x" * 60, role="user")


async def fill(client: AppClient, table: type[Product | Category | User], total: int, category_id: int) -> None:
    """Add rows straight to the database until `table` holds `total` (the admin counts among the users)."""
    async with client.app.state.database.sessionmaker() as session:
        present = (await session.execute(select(func.count()).select_from(table))).scalar_one()
        session.add_all(_new_row(table, category_id) for _ in range(total - present))
        await session.commit()


async def add_category(client: AppClient) -> int:
    async with client.app.state.database.sessionmaker() as session:
        category = Category(name="Widgets", slug="widgets")
        session.add(category)
        await session.commit()
        return category.id


async def statements_of(client: AppClient, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    with recorded_statements(client.app.state.database.engine) as statements:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return len(statements), response.json()


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_statements_per_request_do_not_grow_with_rows(client, admin_headers, case):
    category_id = await add_category(client)
    counts = []
    for rows in (FEW, MANY):
        await fill(client, case.table, rows, category_id)
        path = case.path.format(category_id=category_id, product_id=1)

        statements, body = await statements_of(client, path, admin_headers)

        counts.append(statements)
        if case.is_list:
            assert len(body["items"]) == rows
            assert body["total"] == (None if "cursor=" in path else rows)
        else:
            assert body["id"] == 1
    assert counts == [case.statements, case.statements]


@pytest.mark.parametrize("sort", ["id", "-price", "name", "-created_at"])
async def test_every_cursor_page_is_one_statement(client, admin_headers, sort):
    await fill(client, Product, MANY, await add_category(client))
    cursor: str | None = ""
    pages = []
    while cursor is not None:
        path = f"/api/v1/products?size=7&sort={sort}&cursor={cursor}"
        statements, body = await statements_of(client, path, admin_headers)
        pages.append((statements, len(body["items"])))
        cursor = body["next_cursor"]
    # The user lookup and the page, first to last (the last page holds what is left).
    assert pages == [(2, 7)] * (MANY // 7) + [(2, MANY % 7)]


@pytest.mark.parametrize("lines", [1, 5])
async def test_an_order_adds_one_event_insert_whatever_its_lines(client, admin_headers, lines):
    """The outbox costs an order one INSERT (and on PostgreSQL the one lock that orders commits), not one per line."""
    product_ids = [(await create_product(client, admin_headers))["id"] for _ in range(lines)]
    headers, _ = await signed_in(client)
    with recorded_statements(client.app.state.database.engine) as statements:
        response = await place_order(client, headers, [(product_id, 1) for product_id in product_ids])
    assert response.status_code == 201, response.text

    event_inserts = [
        statement for statement in statements if statement.lstrip().upper().startswith("INSERT INTO EVENTS")
    ]
    locks = [statement for statement in statements if "pg_advisory_xact_lock" in statement]
    assert len(event_inserts) == 1
    assert len(locks) == (1 if client.app.state.settings.database_url.startswith("postgresql") else 0)


# One route of each kind: reads on a connection, a session's route, the routes of one's own account.
PRINCIPAL_PATHS = {
    "one product (connection)": "/api/v1/products/{product_id}",
    "a cursor page (connection)": "/api/v1/products?cursor=",
    "categories (connection)": "/api/v1/categories",
    "orders (session)": "/api/v1/orders",
    "own account (entity)": "/api/v1/users/me",
}
PRINCIPAL_SELECT = (
    "SELECT users.id, users.role, users.is_active, users.session_generation, users.email_verified"
    # With revocations in the database (no Redis), the same statement asks whether the token is revoked.
    "(, EXISTS \\(SELECT .*\\) AS revoked)? FROM users WHERE users.id = "
)


@pytest.mark.parametrize("path", list(PRINCIPAL_PATHS.values()), ids=list(PRINCIPAL_PATHS))
async def test_the_caller_is_one_statement(client, admin_headers, path):
    await fill(client, Product, FEW, await add_category(client))

    with recorded_statements(client.app.state.database.engine) as statements:
        response = await client.get(path.format(product_id=1), headers=admin_headers)

    assert response.status_code == 200, response.text
    [caller] = [" ".join(statement.split()) for statement in statements if "FROM users" in statement]
    if path.endswith("/users/me"):
        # The account's routes read the whole entity instead, in the same one statement.
        assert "users.hashed_password" in caller
    else:
        # A Core row of the principal's columns, nothing else of the account.
        assert re.match(PRINCIPAL_SELECT, caller), caller
