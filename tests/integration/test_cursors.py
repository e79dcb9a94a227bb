"""The contract's cursors (Pages, 1.1) on every list, through the API, on each backend.

Rows are made with many ties in every sort key (equal prices, names and timestamps, and timestamps a microsecond
apart), so a cursor that dropped its tie-breaker or rounded its key would skip or repeat rows.
"""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import update

from auth.roles import Role
from models import Category, Order, Product
from tests.helpers import (
    assert_invalid,
    assert_problem,
    bearer,
    create_category,
    create_product,
    login,
    place_order,
    signed_in,
)

PRODUCTS = "/api/v1/products"
CATEGORIES = "/api/v1/categories"
USERS = "/api/v1/users"
ORDERS = "/api/v1/orders"
SORT_KEYS = ["id", "name", "price", "created_at"]
SORTS = SORT_KEYS + [f"-{key}" for key in SORT_KEYS]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# More pages than any walk here needs: a cursor that fails to move on fails the test instead of looping.
MAX_PAGES = 100


def pages_left(count: int) -> None:
    assert count < MAX_PAGES, "the walk does not end: a cursor failed to move past its page"


async def listed(client: AsyncClient, path: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, (path, params, response.text)
    return response.json()


async def cursor_walk(
    client: AsyncClient, path: str, headers: dict[str, str], sizes: list[int], **params: Any
) -> list[int]:
    """Every id of a list, following next_cursor from `cursor=`; page n has the size sizes[n % len(sizes)]."""
    ids: list[int] = []
    cursor: str | None = ""
    pages = 0
    while cursor is not None:
        pages_left(pages := pages + 1)
        size = sizes[pages % len(sizes)]
        body = await listed(client, path, headers, cursor=cursor, size=size, **params)
        assert (body["total"], body["page"], body["pages"], body["size"]) == (None, None, None, size)
        # A cursor page is full while more follow.
        assert body["next_cursor"] is None or len(body["items"]) == size, body
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
    return ids


async def page_walk(client: AsyncClient, path: str, headers: dict[str, str], size: int, **params: Any) -> list[int]:
    """Every id of a list, page by page, checking each page's next_cursor against the cursor walk's next page."""
    ids: list[int] = []
    page, pages = 1, 1
    while page <= pages:
        body = await listed(client, path, headers, page=page, size=size, **params)
        pages = body["pages"]
        ids += [item["id"] for item in body["items"]]
        if page < pages:
            following = await listed(client, path, headers, cursor=body["next_cursor"], size=size, **params)
            after = await listed(client, path, headers, page=page + 1, size=size, **params)
            assert following["items"] == after["items"]
        else:
            assert body["next_cursor"] is None
        page += 1
    return ids


async def add_products(client: AsyncClient, rows: list[tuple[str, str, datetime]]) -> list[int]:
    """Products of (name, price, created_at), straight into the database; their ids in that order."""
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
        products = [
            Product(name=name, price=Decimal(price), stock=index % 3, created_at=at, updated_at=at)
            for index, (name, price, at) in enumerate(rows)
        ]
        session.add_all(products)
        await session.commit()
        return [product.id for product in products]


def tied_rows(count: int, generator: random.Random) -> list[tuple[str, str, datetime]]:
    """Few names, prices and moments, so every key ties often; some moments differ by one microsecond."""
    moments = [EPOCH, EPOCH + MICROSECOND, EPOCH + 2 * MICROSECOND, EPOCH + timedelta(days=1)]
    return [
        (
            generator.choice(["Anvil", "Bolt", "bolt", "Chisel"]),
            generator.choice(["0.01", "2.50", "2.51", "999999.99"]),
            generator.choice(moments),
        )
        for _ in range(count)
    ]


def expected_order(ids: list[int], rows: list[tuple[str, str, datetime]], sort: str) -> list[int]:
    position = {"id": None, "name": 0, "price": 1, "created_at": 2}[sort.removeprefix("-")]

    def key(pair: tuple[int, tuple[str, str, datetime]]) -> tuple[Any, int]:
        product_id, row = pair
        value = product_id if position is None else row[position]
        return (Decimal(value) if position == 1 else value, product_id)

    return [product_id for product_id, _ in sorted(zip(ids, rows, strict=True), key=key, reverse=sort[0] == "-")]


async def test_products_walked_by_cursor_are_the_pages_in_every_sort(client, admin_headers):
    rows = tied_rows(17, random.Random(3))
    ids = await add_products(client, rows)
    for sort in SORTS:
        expected = expected_order(ids, rows, sort)
        assert await cursor_walk(client, PRODUCTS, admin_headers, [3], sort=sort) == expected, sort
        # The size may change from one page to the next.
        assert await cursor_walk(client, PRODUCTS, admin_headers, [1, 4, 2], sort=sort) == expected, sort
        assert await page_walk(client, PRODUCTS, admin_headers, 5, sort=sort) == expected, sort


async def test_filtered_products_walked_by_cursor_are_the_pages(client, admin_headers):
    rows = tied_rows(24, random.Random(4))
    ids = await add_products(client, rows)
    filters = {"q": "OLT", "min_price": "2.50", "max_price": "999999.99", "in_stock": "true", "sort": "-price"}
    matching = await page_walk(client, PRODUCTS, admin_headers, 2, **filters)
    assert matching, "the filters should match some products"
    assert len(matching) < len(ids)
    assert await cursor_walk(client, PRODUCTS, admin_headers, [2], **filters) == matching
    # The same filters spelled otherwise are the same filters.
    respelled = {**filters, "min_price": "2.5", "max_price": "999999.990"}
    first = await listed(client, PRODUCTS, admin_headers, cursor="", size=1, **filters)
    rest = await cursor_walk_from(client, PRODUCTS, admin_headers, first["next_cursor"], **respelled)
    assert [first["items"][0]["id"], *rest] == matching


async def cursor_walk_from(
    client: AsyncClient, path: str, headers: dict[str, str], cursor: str | None, **params: Any
) -> list[int]:
    ids: list[int] = []
    pages = 0
    while cursor is not None:
        pages_left(pages := pages + 1)
        body = await listed(client, path, headers, cursor=cursor, size=2, **params)
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
    return ids


async def test_categories_users_and_orders_walked_by_cursor_are_the_pages(client, admin_headers):
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
        session.add_all(Category(name=name, slug=f"c{n}") for n, name in enumerate(["Tools", "Garden", "Tools"] * 3))
        await session.commit()
    buyers = [await signed_in(client) for _ in range(3)]
    products = [(await create_product(client, admin_headers, stock=100))["id"] for _ in range(3)]
    for number in range(12):
        headers, _ = buyers[number % 3]
        # Orders of several lines: a page holds `size` orders, however many item rows they join.
        lines = [(product_id, 1) for product_id in products[: number % 3 + 1]]
        assert (await place_order(client, headers, lines)).status_code == 201
    # Orders tie on created_at by threes, and some are a microsecond apart.
    async with client.app.state.database.sessionmaker() as session:  # type: ignore[attr-defined]
        for order_id in range(1, 13):
            moment = EPOCH + (order_id // 3) * MICROSECOND
            await session.execute(update(Order).where(Order.id == order_id).values(created_at=moment))
        await session.commit()
    buyer_headers, buyer = buyers[0]
    lists = [
        (CATEGORIES, admin_headers, {}),
        (USERS, admin_headers, {}),
        (ORDERS, admin_headers, {}),
        (ORDERS, admin_headers, {"user_id": buyer["id"]}),
        (ORDERS, admin_headers, {"status": "pending"}),
        (ORDERS, buyer_headers, {}),
    ]
    for path, headers, params in lists:
        paged = await page_walk(client, path, headers, 2, **params)
        assert len(paged) >= 4, (path, params)
        assert await cursor_walk(client, path, headers, [2], **params) == paged, (path, params)
        assert await cursor_walk(client, path, headers, [5, 1], **params) == paged, (path, params)
    # The orders' order is the contract's, newest first, ties broken by id.
    newest_first = sorted(range(1, 13), key=lambda order_id: (order_id // 3, order_id), reverse=True)
    assert await cursor_walk(client, ORDERS, admin_headers, [4]) == newest_first


async def test_cursor_mode_basics(client, admin_headers):
    empty = await listed(client, PRODUCTS, admin_headers, cursor="")
    assert empty == {"items": [], "total": None, "page": None, "size": 20, "pages": None, "next_cursor": None}
    ids = [(await create_product(client, admin_headers))["id"] for _ in range(3)]

    exactly = await listed(client, PRODUCTS, admin_headers, cursor="", size=3)
    assert ([item["id"] for item in exactly["items"]], exactly["next_cursor"]) == (ids, None)
    first = await listed(client, PRODUCTS, admin_headers, cursor="", size=2)
    assert [item["id"] for item in first["items"]] == ids[:2]
    last = await listed(client, PRODUCTS, admin_headers, cursor=first["next_cursor"], size=2)
    assert ([item["id"] for item in last["items"]], last["next_cursor"]) == (ids[2:], None)
    # Page mode: next_cursor goes on after the page, and is null on the last page and past it.
    paged = await listed(client, PRODUCTS, admin_headers, size=1, page=2)
    after = await listed(client, PRODUCTS, admin_headers, cursor=paged["next_cursor"], size=1)
    assert [item["id"] for item in after["items"]] == ids[2:]
    for page in (3, 4):
        assert (await listed(client, PRODUCTS, admin_headers, size=1, page=page))["next_cursor"] is None


async def test_cursor_and_page_together_are_422(client, admin_headers):
    cursor = (await listed(client, PRODUCTS, admin_headers, size=1))["next_cursor"]
    for value in ("", cursor or "x"):
        assert_invalid(await client.get(PRODUCTS, params={"cursor": value, "page": 1}, headers=admin_headers), "query")
        response = await client.get(ORDERS, params={"cursor": value, "page": 2}, headers=admin_headers)
        assert_invalid(response, "query", "page")


def altered(cursor: str) -> list[str]:
    payload, mac = cursor.split(".")
    flip = {"A": "B", "B": "A"}
    return [
        f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}",
        f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        f"{flip.get(payload[0], 'A')}{payload[1:]}.{mac}",
        f"{payload}.{mac}=",
        f"{payload}=.{mac}",
        f"{payload}.{mac}.{mac}",
        f"{payload}{mac}",
        f"{payload}.",
        f".{mac}",
        cursor[:-1],
        cursor + "A",
        cursor.replace("-", "+").replace("_", "/"),
    ]


async def test_altered_or_foreign_cursors_are_400_invalid_cursor(client, admin_headers):
    for _ in range(3):
        await create_product(client, admin_headers, price="5.00")
    await create_product(client, admin_headers, price="7.00")

    def cursor_of(body: dict[str, Any]) -> str:
        assert body["next_cursor"], body
        return body["next_cursor"]

    by_price = cursor_of(await listed(client, PRODUCTS, admin_headers, cursor="", size=1, sort="price", q="prod"))
    # The cursor itself is good with the query it came from.
    await listed(client, PRODUCTS, admin_headers, cursor=by_price, size=3, sort="price", q="prod")
    refused: list[tuple[str, dict[str, Any]]] = [
        (PRODUCTS, {"cursor": by_price, "sort": "-price", "q": "prod"}),
        (PRODUCTS, {"cursor": by_price, "sort": "id", "q": "prod"}),
        (PRODUCTS, {"cursor": by_price, "sort": "price"}),
        (PRODUCTS, {"cursor": by_price, "sort": "price", "q": "produ"}),
        (PRODUCTS, {"cursor": by_price, "sort": "price", "q": "prod", "in_stock": "true"}),
        (PRODUCTS, {"cursor": by_price, "sort": "price", "q": "prod", "max_price": "7"}),
        (CATEGORIES, {"cursor": by_price}),
        (USERS, {"cursor": by_price}),
        (ORDERS, {"cursor": by_price}),
        *((PRODUCTS, {"cursor": bad, "sort": "price", "q": "prod"}) for bad in altered(by_price)),
        *(
            (PRODUCTS, {"cursor": garbage})
            for garbage in ["x", ".", "..", "é.é", "\x00", "A" * 5000, "W10.AAAA", "%ff", " " + by_price]
        ),
    ]
    for path, params in refused:
        response = await client.get(path, params=params, headers=admin_headers)
        assert_problem(response, 400, "invalid_cursor")

    # A user's cursor belongs to that user's list of orders; an admin's to the filters it was made with.
    product = await create_product(client, admin_headers, stock=10)
    first_headers, first_user = await signed_in(client)
    second_headers, _ = await signed_in(client)
    for headers in (first_headers, first_headers, second_headers, admin_headers):
        assert (await place_order(client, headers, [(product["id"], 1)])).status_code == 201
    own = cursor_of(await listed(client, ORDERS, first_headers, cursor="", size=1))
    assert len((await listed(client, ORDERS, first_headers, cursor=own))["items"]) == 1
    assert_problem(await client.get(ORDERS, params={"cursor": own}, headers=second_headers), 400, "invalid_cursor")
    everyone = cursor_of(await listed(client, ORDERS, admin_headers, cursor="", size=1))
    response = await client.get(ORDERS, params={"cursor": everyone, "user_id": first_user["id"]}, headers=admin_headers)
    assert_problem(response, 400, "invalid_cursor")
    response = await client.get(ORDERS, params={"cursor": everyone, "status": "paid"}, headers=admin_headers)
    assert_problem(response, 400, "invalid_cursor")


async def test_a_cursor_signed_with_another_secret_key_is_400(app_client):
    async with app_client(secret_key="first-secret-key-that-is-long-enough") as client:
        headers, admin = await signed_in(client, Role.ADMIN)
        for name in ("Apple", "Banana"):
            await create_category(client, headers, name)
        cursor = (await listed(client, CATEGORIES, headers, size=1))["next_cursor"]
        assert [item["name"] for item in (await listed(client, CATEGORIES, headers, cursor=cursor))["items"]] == [
            "Banana"
        ]
    async with app_client(secret_key="second-secret-key-that-is-long-enough") as client:
        headers = bearer((await login(client, admin["username"]))["access_token"])
        assert_problem(await client.get(CATEGORIES, params={"cursor": cursor}, headers=headers), 400, "invalid_cursor")


@pytest.mark.parametrize("sort", SORTS)
async def test_walking_while_rows_come_and_go_returns_each_lasting_row_once(client, admin_headers, sort):
    """Between pages, other clients add products, delete one the walk has seen and one it has not, and change one
    it has not reached without touching its sort key."""
    generator = random.Random(sort)
    rows = tied_rows(30, generator)
    initial = await add_products(client, rows)
    by_id = dict(zip(initial, rows, strict=True))
    deleted: set[int] = set()
    deleted_unseen: set[int] = set()
    walked: list[int] = []
    cursor: str | None = ""
    while cursor is not None:
        pages_left(len(walked) // 4)
        body = await listed(client, PRODUCTS, admin_headers, cursor=cursor, size=4, sort=sort)
        walked += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]

        unseen = [product_id for product_id in initial if product_id not in walked and product_id not in deleted]
        seen = [product_id for product_id in walked if product_id in by_id and product_id not in deleted]
        victims = [generator.choice(unseen)] if unseen else []
        deleted_unseen.update(victims)
        victims += [generator.choice(seen)] if seen else []
        for victim in victims:
            assert (await client.delete(f"{PRODUCTS}/{victim}", headers=admin_headers)).status_code == 204
            deleted.add(victim)
        for name, price, _ in tied_rows(2, generator):
            await create_product(client, admin_headers, name=name, price=price)
        if remaining := [product_id for product_id in unseen if product_id not in deleted]:
            changed = generator.choice(remaining)
            name, price, _ = by_id[changed]
            replacement = {"name": name, "price": price, "stock": 99, "description": "restocked"}
            assert (
                await client.put(f"{PRODUCTS}/{changed}", json=replacement, headers=admin_headers)
            ).status_code == 200

    assert deleted_unseen, "the walk should have had rows deleted ahead of it"
    assert len(walked) == len(set(walked)), "a row came twice"
    assert set(initial) - deleted <= set(walked), "a row that matched throughout was skipped"
    assert not deleted_unseen & set(walked), "a row deleted before the walk reached it appeared"
    # What the walk returned of the first rows is in the list's order.
    first_rows = [product_id for product_id in walked if product_id in by_id]
    assert first_rows == [product_id for product_id in expected_order(initial, rows, sort) if product_id in first_rows]
