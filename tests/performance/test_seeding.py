"""The seeding command loads products with one INSERT statement per batch, never one per row."""

from decimal import Decimal
from math import ceil
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

import cli


@pytest.fixture
def inserts() -> Any:
    """Every INSERT any engine of this process sends to its driver, with whether it went as executemany."""
    seen: list[tuple[str, bool]] = []

    def record(_connection: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            seen.append((statement, many))

    # cli.seed_products opens its own engine, so listen on every engine rather than on one.
    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("count", [1, cli.SEED_BATCH_SIZE, 2 * cli.SEED_BATCH_SIZE + 1])
async def test_seeding_sends_one_insert_per_batch(backend, client, user_headers, inserts, count):
    inserts.clear()  # signing in inserted a user, a refresh-token family and its token

    assert await cli.seed_products(backend.settings(), count=count, seed=7) == 0

    # executemany would hand the driver one statement that it runs once per row; each of these runs once.
    assert [many for _, many in inserts] == [False] * ceil(count / cli.SEED_BATCH_SIZE)
    assert all(statement.startswith("INSERT INTO products") for statement, _ in inserts)
    response = await client.get("/api/v1/products", params={"size": 100, "sort": "-id"}, headers=user_headers)
    assert response.status_code == 200
    page = response.json()
    assert page["total"] == count
    newest = page["items"][0]
    assert newest["name"] == f"Product {count:06d}"
    assert Decimal("1.00") <= Decimal(newest["price"]) <= Decimal("1000.00")
    assert newest["stock"] >= 0
    assert len({item["name"] for item in page["items"]}) == len(page["items"])
