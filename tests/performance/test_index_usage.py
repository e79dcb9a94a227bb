"""At 100k products on PostgreSQL, the catalogue's indexed filters and sorts never scan the whole products table.

`q` (lower(name) LIKE '%...%') is served by the pg_trgm index on lower(name). A cursor page, at any depth and in
every sort, is one statement that reads one range of an index and sorts nothing.

Not covered, by design: `in_stock=true` matches nearly every row, where a sequential scan is the right plan. An
unfiltered page's count reads every live row whatever the indexes, so for sorts without a filter only the page
query itself is checked.
"""

import asyncio
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, text

import cli
from config import Settings
from database.connection import Database, write_transaction
from database.pagination import CursorRequest, ListRequest, PageRequest
from database.repositories import products as products_repo
from models import Category, Product
from services.catalogue import ProductFilter
from tests.conftest import in_thread

pytestmark = pytest.mark.postgres

PRODUCTS = 100_000
CATEGORIES = 100


def _product_rows(start: int, stop: int, generator: random.Random) -> list[dict[str, Any]]:
    """Sample products like `cli.py seed-products` makes, spread evenly over the categories."""
    return [
        {
            "name": f"Product {number:06d}",
            "description": f"Sample product number {number}",
            "price": Decimal(generator.randint(100, 100_000)) / 100,
            "stock": generator.randint(0, 500),
            "category_id": number % CATEGORIES + 1,
        }
        for number in range(start, stop)
    ]


async def _seed_catalogue(url: str) -> None:
    database = Database(Settings(environment="test", database_url=url))
    generator = random.Random(1)
    try:
        async with database.sessionmaker() as session:
            async with write_transaction(session):
                await session.execute(text("TRUNCATE products, categories RESTART IDENTITY CASCADE"))
                session.add_all(Category(name=f"C{n}", slug=f"c{n}") for n in range(CATEGORIES))
            for start in range(0, PRODUCTS, cli.SEED_BATCH_SIZE):
                async with write_transaction(session):
                    rows = _product_rows(start + 1, start + cli.SEED_BATCH_SIZE + 1, generator)
                    await products_repo.bulk_insert_products(session, rows)
            await session.execute(text("ANALYZE products"))
            await session.commit()
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def catalogue(postgres_url: str) -> str:
    """The test database holding 100k products in 100 categories, seeded once (tests using `backend` empty it)."""
    in_thread(asyncio.run, _seed_catalogue(postgres_url))
    return postgres_url


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


async def explained(url: str, filters: ProductFilter, page: ListRequest) -> list[tuple[str, list[dict[str, Any]]]]:
    """Run the repository's list query, then EXPLAIN each statement it sent, with the same parameters."""
    database = Database(Settings(environment="test", database_url=url))
    sent: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    try:
        async with database.sessionmaker() as session:
            event.listen(database.engine.sync_engine, "before_cursor_execute", record)
            try:
                page_result = await products_repo.list_products(session, filters, page)
            finally:
                event.remove(database.engine.sync_engine, "before_cursor_execute", record)
            assert page_result.items, "the query should find products, or its plan proves nothing"
            plans = []
            for statement, parameters in sent:
                connection = await session.connection()
                rows = await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                plans.append((statement, list(plan_nodes(rows.scalar_one()[0]["Plan"]))))
            return plans
    finally:
        await database.dispose()


PRICE_RANGE = {"min_price": Decimal("10.00"), "max_price": Decimal("20.00")}
# Filters narrow enough for an index: both the count and the page must use one.
FILTERED = {
    "category": (ProductFilter(category_id=7), PageRequest()),
    "category, by price": (ProductFilter(category_id=7, sort="-price"), PageRequest()),
    "price range": (ProductFilter(**PRICE_RANGE), PageRequest()),
    "price range, by price": (ProductFilter(**PRICE_RANGE, sort="price"), PageRequest(page=2)),
    "out of stock": (ProductFilter(in_stock=False), PageRequest()),
}
# Sorts of the whole catalogue with LIMIT: the page must come off an index, not from sorting every row.
SORTED = {
    f"{sort} page {page}": (ProductFilter(sort=sort), PageRequest(page=page))
    for sort, page in [
        ("price", 1),
        ("price", 3),
        ("-price", 1),
        ("created_at", 1),
        ("-created_at", 1),
        ("name", 1),
        ("-name", 1),
        ("id", 1),
    ]
}
PRODUCT_INDEXES = {index.name for index in Product.__table__.indexes} | {"pk_products"}


def assert_uses_index(plan: list[dict[str, Any]], statement: str) -> None:
    scans = [node for node in plan if node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "products"]
    assert not scans, statement
    assert {node.get("Index Name") for node in plan} & PRODUCT_INDEXES, statement


@pytest.mark.parametrize(("filters", "page"), list(FILTERED.values()), ids=list(FILTERED))
async def test_indexed_filters_use_an_index_for_count_and_page(catalogue, filters, page):
    plans = await explained(catalogue, filters, page)

    assert len(plans) == 2  # the count, then the page
    for statement, plan in plans:
        assert_uses_index(plan, statement)


@pytest.mark.parametrize(("filters", "page"), list(SORTED.values()), ids=list(SORTED))
async def test_sorted_pages_come_off_an_index(catalogue, filters, page):
    plans = await explained(catalogue, filters, page)

    count_statement, page_statement = plans[0][0], plans[-1][0]
    assert "count(" in count_statement
    assert "LIMIT" in page_statement
    assert_uses_index(plans[-1][1], page_statement)


# Names are "Product 000001" to "Product 100000": this term is in one of them.
RARE_TERM = "054321"
TRIGRAM_INDEX = "ix_products_name_trigram"
SEARCHED = {
    "page": (ProductFilter(q=RARE_TERM), PageRequest()),
    "cursor": (ProductFilter(q=RARE_TERM), CursorRequest()),
    "cursor, by price": (ProductFilter(q=RARE_TERM, sort="-price"), CursorRequest()),
    "cursor, by name, with a category": (ProductFilter(q=RARE_TERM, sort="name", category_id=22), CursorRequest()),
}


@pytest.mark.parametrize(("filters", "page"), list(SEARCHED.values()), ids=list(SEARCHED))
async def test_q_is_served_by_the_trigram_index(catalogue, filters, page):
    plans = await explained(catalogue, filters, page)

    assert len(plans) == (2 if isinstance(page, PageRequest) else 1)
    for statement, plan in plans:
        assert TRIGRAM_INDEX in {node.get("Index Name") for node in plan}, statement
        assert not [node for node in plan if node["Node Type"] == "Seq Scan"], statement


async def middle_key(url: str, filters: ProductFilter) -> tuple[Any, ...]:
    """The sort key of the product halfway down the catalogue in this order."""
    database = Database(Settings(environment="test", database_url=url))
    try:
        async with database.sessionmaker() as session:
            page = await products_repo.list_products(session, filters, PageRequest(page=PRODUCTS // 40, size=20))
    finally:
        await database.dispose()
    assert page.next_key is not None
    return page.next_key


CURSOR_SORTS = ["id", "-id", "price", "-price", "name", "-name", "created_at", "-created_at"]


@pytest.mark.parametrize("sort", CURSOR_SORTS)
async def test_a_cursor_page_is_one_index_range_at_any_depth(catalogue, sort):
    filters = ProductFilter(sort=sort)
    for after in (None, await middle_key(catalogue, filters)):
        plans = await explained(catalogue, filters, CursorRequest(size=20, after=after))

        assert len(plans) == 1  # no count: the page and whether more follow, at once
        statement, plan = plans[0]
        assert "LIMIT" in statement
        assert_uses_index(plan, statement)
        # Seeded products share created_at by the thousand and prices by the few: only an index that ends with
        # the id gives the page in order without sorting the ties.
        assert not [node for node in plan if "Sort" in node["Node Type"]], (statement, plan)
