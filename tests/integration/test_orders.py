"""Every endpoint and error of /api/v1/orders, checked as a client sees it and in the database afterwards.

Cases that differ only in the request are parametrised, each on a fresh database and app, so that the first
failure does not hide the rest.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select, update

from auth.roles import Role
from database.repositories import products as products_repo
from models import IdempotencyKey, Product
from tests.conftest import sqlite_only
from tests.helpers import AppClient, assert_problem, create_product, place_order, row_counts, signed_in, stocks

ORDERS = "/api/v1/orders"
ORDER_KEYS = {"id", "user_id", "status", "total", "created_at", "updated_at", "expires_at", "items"}
ITEM_KEYS = {"id", "product_id", "quantity", "price"}
# The contract's status machine, written out here rather than taken from the code under test.
ALLOWED = {
    ("pending", "paid"),
    ("pending", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelled"),
    ("shipped", "delivered"),
}
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]
# How to bring a new (pending) order into each status.
ROUTE_TO = {
    "pending": [],
    "paid": ["paid"],
    "shipped": ["paid", "shipped"],
    "delivered": ["paid", "shipped", "delivered"],
    "cancelled": ["cancelled"],
}


def assert_timestamp(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() is not None, value
    return moment


async def counts(client: AppClient) -> tuple[int, int]:
    """How many orders and order items the database holds."""
    found = await row_counts(client, "orders", "order_items")
    return found["orders"], found["order_items"]


async def add_products(client: AppClient, count: int, *, price: str, stock: int) -> list[int]:
    """Many products straight into the database (ids 1..count on a fresh one); the API would take a request each."""
    async with client.app.state.database.sessionmaker() as session:
        rows = [{"name": f"Bulk {n}", "price": Decimal(price), "stock": stock} for n in range(count)]
        await products_repo.bulk_insert_products(session, rows)
        await session.commit()
        return list((await session.scalars(select(Product.id).order_by(Product.id))).all())


async def change_status(client: AppClient, admin: dict[str, str], order_id: int, status: str) -> Response:
    return await client.patch(f"{ORDERS}/{order_id}/status", json={"status": status}, headers=admin)


async def placed(client: AppClient, headers: dict[str, str], lines: list[tuple[int, int]]) -> dict[str, Any]:
    response = await place_order(client, headers, lines)
    assert response.status_code == 201, response.text
    return response.json()


async def order_in(client: AppClient, admin: dict[str, str], user: dict[str, str], status: str, product_id: int):
    order = await placed(client, user, [(product_id, 1)])
    for step in ROUTE_TO[status]:
        moved = await change_status(client, admin, order["id"], step)
        assert moved.status_code == 200, moved.text
        order = moved.json()
    return order


async def test_placing_an_order(client, admin_headers, user_headers):
    cheap = await create_product(client, admin_headers, price="0.10", stock=10)
    dear = await create_product(client, admin_headers, price="19.90", stock=5)
    me = (await client.get("/api/v1/users/me", headers=user_headers)).json()

    response = await place_order(client, user_headers, [(dear["id"], 2), (cheap["id"], 3)])

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"{ORDERS}/{order['id']}"
    assert response.headers["content-type"] == "application/json"
    assert set(order) == ORDER_KEYS
    assert order["user_id"] == me["id"]
    assert order["status"] == "pending"
    # Strings with two decimals, exact: 0.10 × 3 is not 0.30000000000000004.
    assert order["total"] == "40.10"
    assert [set(item) for item in order["items"]] == [ITEM_KEYS, ITEM_KEYS]
    assert [(i["product_id"], i["quantity"], i["price"]) for i in order["items"]] == [
        (dear["id"], 2, "19.90"),
        (cheap["id"], 3, "0.10"),
    ]
    assert assert_timestamp(order["updated_at"]) >= assert_timestamp(order["created_at"])
    assert abs(assert_timestamp(order["created_at"]) - datetime.now(UTC)) < timedelta(hours=1)
    # The default payment window (ORDER_PAYMENT_TTL_SECONDS) is half an hour.
    assert assert_timestamp(order["expires_at"]) - assert_timestamp(order["created_at"]) == timedelta(minutes=30)
    assert await stocks(client, dear["id"], cheap["id"]) == [3, 7]
    fetched = await client.get(response.headers["location"], headers=user_headers)
    assert fetched.status_code == 200
    assert fetched.json() == order


async def test_largest_order_is_accepted_and_its_total_exact(client, user_headers):
    product_ids = await add_products(client, 100, price="1000000.00", stock=1000)

    response = await place_order(client, user_headers, [(product_id, 1000) for product_id in product_ids])

    assert response.status_code == 201, response.text
    assert response.json()["total"] == "100000000000.00"
    assert len(response.json()["items"]) == 100
    assert {item["price"] for item in response.json()["items"]} == {"1000000.00"}
    assert await stocks(client, *product_ids) == [0] * 100


def _lines(count: int, quantity: Any = 1) -> list[dict[str, Any]]:
    return [{"product_id": n, "quantity": quantity} for n in range(1, count + 1)]


INVALID_BODIES = {
    "no items": {"items": []},
    "101 items": {"items": _lines(101)},
    "items missing": {},
    "items not a list": {"items": {"product_id": 1, "quantity": 1}},
    "same product twice": {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}]},
    "quantity 0": {"items": _lines(1, 0)},
    "quantity 1001": {"items": _lines(1, 1001)},
    "quantity negative": {"items": _lines(1, -1)},
    "quantity fractional": {"items": _lines(1, 1.5)},
    "quantity missing": {"items": [{"product_id": 1}]},
    "product_id 0": {"items": [{"product_id": 0, "quantity": 1}]},
    "product_id not a number": {"items": [{"product_id": "one", "quantity": 1}]},
    "order sets total": {"items": _lines(1), "total": "0.01"},
    "order sets status": {"items": _lines(1), "status": "paid"},
    "order sets user_id": {"items": _lines(1), "user_id": 1},
    "item sets price": {"items": [{"product_id": 1, "quantity": 1, "price": "0.01"}]},
}


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("body", list(INVALID_BODIES.values()), ids=list(INVALID_BODIES))
async def test_invalid_order_bodies_are_422_and_change_nothing(client, user_headers, body):
    # Enough of everything that each body would be accepted if it were valid.
    product_ids = await add_products(client, 101, price="1.00", stock=2000)

    response = await client.post(ORDERS, json=body, headers=user_headers)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"]
    assert all(error["loc"][0] == "body" for error in problem["errors"])
    assert await stocks(client, *product_ids) == [2000] * 101
    assert await counts(client) == (0, 0)


@pytest.mark.parametrize(
    ("length", "accepted"), [(0, False), (1, True), (255, True), (256, False)], ids=lambda value: str(value)
)
async def test_idempotency_key_must_be_1_to_255_characters(client, admin_headers, user_headers, length, accepted):
    product = await create_product(client, admin_headers, stock=5)

    response = await place_order(client, user_headers | {"Idempotency-Key": "k" * length}, [(product["id"], 1)])

    if accepted:
        assert response.status_code == 201, response.text
    else:
        problem = assert_problem(response, 422, "validation_error")
        assert [error["loc"] for error in problem["errors"]] == [["header", "Idempotency-Key"]]
    assert await stocks(client, product["id"]) == [4 if accepted else 5]


VISIBLE_ASCII = "".join(chr(code) for code in range(0x21, 0x7F))


@sqlite_only  # header validation does not depend on the database
@pytest.mark.parametrize(
    "key",
    [
        pytest.param("schlüssel".encode(), id="utf-8 umlaut"),
        pytest.param("ключ".encode(), id="utf-8 cyrillic"),
        pytest.param(b"caf\xe9", id="latin-1 e-acute"),
        pytest.param(b"\xff\xfe", id="not utf-8"),
        pytest.param(b"two words", id="space"),
        pytest.param(b"tab\tinside", id="tab"),
        pytest.param(b"del\x7f", id="DEL"),
        pytest.param(b"bell\x07", id="control character"),
    ],
)
async def test_idempotency_key_of_other_than_visible_ascii_is_422(client, admin_headers, user_headers, key):
    product = await create_product(client, admin_headers, stock=5)

    response = await place_order(client, user_headers | {"Idempotency-Key": key}, [(product["id"], 1)])
    problem = assert_problem(response, 422, "validation_error")
    assert [error["loc"] for error in problem["errors"]] == [["header", "Idempotency-Key"]]

    assert await stocks(client, product["id"]) == [5]
    assert await counts(client) == (0, 0)


@sqlite_only  # header validation does not depend on the database
@pytest.mark.parametrize("keys", [("same", "same"), ("first", "second")], ids=["same twice", "two different"])
async def test_two_idempotency_key_headers_are_422(client, admin_headers, user_headers, keys):
    product = await create_product(client, admin_headers, stock=5)
    headers = [*user_headers.items(), *(("Idempotency-Key", key) for key in keys)]

    response = await place_order(client, headers, [(product["id"], 1)])
    problem = assert_problem(response, 422, "validation_error")
    assert [error["loc"] for error in problem["errors"]] == [["header", "Idempotency-Key"]]

    assert await stocks(client, product["id"]) == [5]
    assert await counts(client) == (0, 0)


@pytest.mark.parametrize(
    "key", ["!", "~", VISIBLE_ASCII, "x" * 255, "order-2026-11-26#1"], ids=["!", "~", "all", "255", "typical"]
)
async def test_visible_ascii_idempotency_keys_replay(client, admin_headers, user_headers, key):
    product = await create_product(client, admin_headers, stock=5)
    headers = user_headers | {"Idempotency-Key": key}

    first = await place_order(client, headers, [(product["id"], 2)])
    again = await place_order(client, headers, [(product["id"], 2)])

    assert (first.status_code, again.status_code) == (201, 201), first.text
    assert again.content == first.content
    assert await stocks(client, product["id"]) == [3]
    assert await counts(client) == (1, 1)


@pytest.mark.parametrize("deleted", [False, True], ids=["unknown", "deleted"])
async def test_unknown_or_deleted_product_is_400_and_changes_nothing(client, admin_headers, user_headers, deleted):
    kept = await create_product(client, admin_headers, stock=5)
    gone = await create_product(client, admin_headers, stock=5)
    assert (await client.delete(f"/api/v1/products/{gone['id']}", headers=admin_headers)).status_code == 204
    missing_id = gone["id"] if deleted else gone["id"] + 100

    response = await place_order(client, user_headers, [(kept["id"], 1), (missing_id, 1)])

    problem = assert_problem(response, 400, "unknown_product")
    assert str(missing_id) in problem["detail"]

    assert await stocks(client, kept["id"], gone["id"]) == [5, 5]
    assert await counts(client) == (0, 0)


async def test_insufficient_stock_is_409_and_changes_nothing(client, admin_headers, user_headers):
    plenty = await create_product(client, admin_headers, stock=10)
    scarce = await create_product(client, admin_headers, stock=2)

    response = await place_order(client, user_headers, [(plenty["id"], 5), (scarce["id"], 3)])

    problem = assert_problem(response, 409, "insufficient_stock")
    assert str(scarce["id"]) in problem["detail"]
    assert await stocks(client, plenty["id"], scarce["id"]) == [10, 2]
    assert await counts(client) == (0, 0)
    # Exactly what is left can still be ordered.
    assert (await place_order(client, user_headers, [(plenty["id"], 5), (scarce["id"], 2)])).status_code == 201
    assert await stocks(client, plenty["id"], scarce["id"]) == [5, 0]


async def test_guests_read_but_cannot_order(client, admin_headers, user_headers, guest_headers):
    product = await create_product(client, admin_headers, stock=5)
    await placed(client, user_headers, [(product["id"], 1)])

    assert_problem(await place_order(client, guest_headers, [(product["id"], 1)]), 403, "insufficient_role")
    # The role is judged before the body.
    assert_problem(await client.post(ORDERS, json={"items": []}, headers=guest_headers), 403, "insufficient_role")
    assert await stocks(client, product["id"]) == [4]
    assert await counts(client) == (1, 1)
    # A guest's own list is simply empty; the user's order is not in it.
    listed = await client.get(ORDERS, headers=guest_headers)
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "total": 0, "page": 1, "size": 20, "pages": 0, "next_cursor": None}


@sqlite_only  # refused before any query runs
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", ORDERS),
        ("GET", ORDERS),
        ("GET", f"{ORDERS}/1"),
        ("PATCH", f"{ORDERS}/1/status"),
        ("POST", f"{ORDERS}/1/cancel"),
    ],
)
async def test_every_orders_endpoint_needs_a_token(client, method, path):
    # A body that would be invalid: authentication is judged first.
    response = await client.request(method, path, json={"items": [], "status": "nonsense"})

    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_list_is_the_callers_own_newest_first_and_paginated(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=10)
    other, _ = await signed_in(client)
    mine = [(await placed(client, user_headers, [(product["id"], 1)]))["id"] for _ in range(3)]
    theirs = (await placed(client, other, [(product["id"], 1)]))["id"]

    async def page(headers: dict[str, str], **params: Any) -> dict[str, Any]:
        response = await client.get(ORDERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    first = await page(user_headers, size=2)
    assert [order["id"] for order in first["items"]] == [mine[2], mine[1]]
    assert (first["total"], first["page"], first["size"], first["pages"]) == (3, 1, 2, 2)
    assert set(first["items"][0]) == ORDER_KEYS
    assert first["items"][0] == (await client.get(f"{ORDERS}/{mine[2]}", headers=user_headers)).json()
    second = await page(user_headers, size=2, page=2)
    assert [order["id"] for order in second["items"]] == [mine[0]]
    past_the_end = await page(user_headers, size=2, page=3)
    assert (past_the_end["items"], past_the_end["total"], past_the_end["pages"]) == ([], 3, 2)
    assert [order["id"] for order in (await page(other))["items"]] == [theirs]
    assert (await page(user_headers))["size"] == 20


INVALID_READS = {
    "page 0": (ORDERS, {"page": 0}, "query"),
    "size 0": (ORDERS, {"size": 0}, "query"),
    "size 101": (ORDERS, {"size": 101}, "query"),
    "page not a number": (ORDERS, {"page": "first"}, "query"),
    "unknown status": (ORDERS, {"status": "refunded"}, "query"),
    "order id 0": (f"{ORDERS}/0", {}, "path"),
    "order id not a number": (f"{ORDERS}/abc", {}, "path"),
    "order id too large": (f"{ORDERS}/{2**31}", {}, "path"),
}


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(("path", "params", "where"), list(INVALID_READS.values()), ids=list(INVALID_READS))
async def test_invalid_query_or_path_is_422(client, user_headers, path, params, where):
    response = await client.get(path, params=params, headers=user_headers)

    problem = assert_problem(response, 422, "validation_error")
    assert [error["loc"][0] for error in problem["errors"]] == [where]


async def test_invalid_user_filter_is_422_for_an_admin(client, admin_headers):
    # Only an admin may filter by user_id at all, so only an admin's bad user_id reaches validation.
    problem = assert_problem(
        await client.get(ORDERS, params={"user_id": 0}, headers=admin_headers), 422, "validation_error"
    )
    assert [error["loc"] for error in problem["errors"]] == [["query", "user_id"]]


async def test_list_filters_by_status(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=20)
    by_status = {}
    for status in STATUSES:
        by_status[status] = (await order_in(client, admin_headers, user_headers, status, product["id"]))["id"]

    async def listed(status: str) -> list[tuple[int, str]]:
        response = await client.get(ORDERS, params={"status": status}, headers=user_headers)
        assert response.status_code == 200, response.text
        return [(order["id"], order["status"]) for order in response.json()["items"]]

    # Compared at once, so that every status whose filter goes wrong shows.
    assert {status: await listed(status) for status in STATUSES} == {
        status: [(order_id, status)] for status, order_id in by_status.items()
    }


async def test_admin_sees_everyones_orders_and_filters_by_user(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=10)
    other, other_user = await signed_in(client)
    me = (await client.get("/api/v1/users/me", headers=user_headers)).json()
    first = (await placed(client, user_headers, [(product["id"], 1)]))["id"]
    second = (await placed(client, other, [(product["id"], 1)]))["id"]
    third = (await placed(client, user_headers, [(product["id"], 1)]))["id"]

    async def listed(headers: dict[str, str], **params: Any) -> list[int]:
        response = await client.get(ORDERS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [order["id"] for order in response.json()["items"]]

    assert await listed(admin_headers) == [third, second, first]
    assert await listed(admin_headers, user_id=me["id"]) == [third, first]
    assert await listed(admin_headers, user_id=other_user["id"], status="pending") == [second]
    assert await listed(admin_headers, user_id=other_user["id"], status="paid") == []
    # A user may name itself, but not someone else.
    assert await listed(user_headers, user_id=me["id"]) == [third, first]
    refused = await client.get(ORDERS, params={"user_id": other_user["id"]}, headers=user_headers)
    assert_problem(refused, 403, "insufficient_role")


async def test_another_users_order_is_404_like_a_missing_one(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=5)
    other, _ = await signed_in(client)
    order = await placed(client, other, [(product["id"], 1)])

    foreign = assert_problem(await client.get(f"{ORDERS}/{order['id']}", headers=user_headers), 404, "not_found")
    missing = assert_problem(await client.get(f"{ORDERS}/{order['id'] + 1}", headers=user_headers), 404, "not_found")
    assert foreign["detail"].replace(str(order["id"]), "N") == missing["detail"].replace(str(order["id"] + 1), "N")

    assert (await client.get(f"{ORDERS}/{order['id']}", headers=other)).json() == order
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).json() == order


@pytest.mark.parametrize(
    "route", [["paid", "shipped", "delivered"], ["paid", "cancelled"], ["cancelled"]], ids="-".join
)
async def test_allowed_status_transitions(client, admin_headers, user_headers, route):
    product = await create_product(client, admin_headers, stock=10)
    order = await placed(client, user_headers, [(product["id"], 3)])
    previous = order
    for status in route:
        response = await change_status(client, admin_headers, order["id"], status)
        assert response.status_code == 200, f"at {status}: {response.text}"
        changed = response.json()
        # Leaving pending ends the payment deadline.
        assert changed == previous | {"status": status, "updated_at": changed["updated_at"], "expires_at": None}
        assert assert_timestamp(changed["updated_at"]) >= assert_timestamp(previous["updated_at"])
        assert (await client.get(f"{ORDERS}/{order['id']}", headers=user_headers)).json() == changed
        previous = changed
    assert await stocks(client, product["id"]) == [10 if route[-1] == "cancelled" else 7]


FORBIDDEN = [(source, target) for source in STATUSES for target in STATUSES if (source, target) not in ALLOWED]


def test_every_other_pair_of_statuses_is_forbidden():
    assert len(FORBIDDEN) == 20


@pytest.mark.parametrize(("source", "target"), FORBIDDEN, ids=[f"{source}->{target}" for source, target in FORBIDDEN])
async def test_forbidden_status_transitions_are_409_and_change_nothing(
    client, admin_headers, user_headers, source, target
):
    product = await create_product(client, admin_headers, stock=20)
    order = await order_in(client, admin_headers, user_headers, source, product["id"])
    stock = await stocks(client, product["id"])

    response = await change_status(client, admin_headers, order["id"], target)

    assert_problem(response, 409, "invalid_status_transition")
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).json() == order
    assert await stocks(client, product["id"]) == stock


@pytest.mark.parametrize("start", ["pending", "paid"])
async def test_cancelling_restores_stock_exactly_once(client, admin_headers, user_headers, start):
    first = await create_product(client, admin_headers, stock=10)
    second = await create_product(client, admin_headers, stock=4)
    order = await placed(client, user_headers, [(first["id"], 6), (second["id"], 4)])
    if start == "paid":
        assert (await change_status(client, admin_headers, order["id"], "paid")).status_code == 200
    assert await stocks(client, first["id"], second["id"]) == [4, 0]

    assert (await change_status(client, admin_headers, order["id"], "cancelled")).status_code == 200
    again = await change_status(client, admin_headers, order["id"], "cancelled")
    assert_problem(again, 409, "invalid_status_transition")

    assert await stocks(client, first["id"], second["id"]) == [10, 4]


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST], ids=lambda role: role.value)
async def test_changing_status_needs_an_admin(client, admin_headers, user_headers, role):
    product = await create_product(client, admin_headers, stock=5)
    order = await placed(client, user_headers, [(product["id"], 1)])
    caller, _ = await signed_in(client, role)

    response = await client.patch(f"{ORDERS}/{order['id']}/status", json={"status": "paid"}, headers=caller)

    assert_problem(response, 403, "insufficient_role")
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).json() == order


async def test_changing_the_status_of_a_missing_order_is_404(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=5)
    order = await placed(client, user_headers, [(product["id"], 1)])

    assert_problem(await change_status(client, admin_headers, order["id"] + 1, "paid"), 404, "not_found")
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).json() == order


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    "body",
    [{"status": "refunded"}, {}, {"status": "paid", "total": "0.01"}, {"status": None}],
    ids=["unknown-status", "empty", "extra-field", "null-status"],
)
async def test_changing_status_needs_a_valid_body(client, admin_headers, user_headers, body):
    product = await create_product(client, admin_headers, stock=5)
    order = await placed(client, user_headers, [(product["id"], 1)])

    response = await client.patch(f"{ORDERS}/{order['id']}/status", json=body, headers=admin_headers)

    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"][0]["loc"][0] == "body"
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).json() == order


async def test_deleting_a_product_keeps_its_order_items(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, price="7.25", stock=5)
    order = await placed(client, user_headers, [(product["id"], 2)])

    assert (await client.delete(f"/api/v1/products/{product['id']}", headers=admin_headers)).status_code == 204

    assert (await client.get(f"/api/v1/products/{product['id']}", headers=admin_headers)).status_code == 404
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=user_headers)).json() == order
    assert [(i["product_id"], i["quantity"], i["price"]) for i in order["items"]] == [(product["id"], 2, "7.25")]
    assert (await client.get(ORDERS, headers=user_headers)).json()["items"] == [order]
    # The order can still move on, cancelling included.
    cancelled = await change_status(client, admin_headers, order["id"], "cancelled")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["items"] == order["items"]


async def test_same_idempotency_key_and_body_replays_the_first_order(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=10)
    headers = user_headers | {"Idempotency-Key": "checkout-1"}

    first = await place_order(client, headers, [(product["id"], 2)])
    again = await place_order(client, headers, [(product["id"], 2)])

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    # Only the repeat says it is one.
    assert "idempotency-replayed" not in first.headers
    assert again.headers["idempotency-replayed"] == "true"
    assert await stocks(client, product["id"]) == [8]
    assert await counts(client) == (1, 1)

    # Even after the order moved on, a retry gets the first answer back and changes nothing.
    assert (await change_status(client, admin_headers, first.json()["id"], "cancelled")).status_code == 200
    later = await place_order(client, headers, [(product["id"], 2)])
    assert (later.status_code, later.content) == (201, first.content)
    assert await stocks(client, product["id"]) == [10]
    assert await counts(client) == (1, 1)


@pytest.mark.parametrize(
    "other_lines",
    [[("first", 3)], [("first", 2), ("second", 1)], [("second", 2)]],
    ids=["other-quantity", "extra-line", "other-product"],
)
async def test_same_idempotency_key_with_another_body_is_409(client, admin_headers, user_headers, other_lines):
    first = await create_product(client, admin_headers, stock=10)
    second = await create_product(client, admin_headers, stock=10)
    ids = {"first": first["id"], "second": second["id"]}
    headers = user_headers | {"Idempotency-Key": "checkout-1"}
    await placed(client, headers, [(first["id"], 2)])

    response = await place_order(client, headers, [(ids[name], quantity) for name, quantity in other_lines])

    assert_problem(response, 409, "idempotency_key_reused")
    assert await stocks(client, first["id"], second["id"]) == [8, 10]
    assert await counts(client) == (1, 1)


async def test_idempotency_key_belongs_to_one_user(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=10)
    other, _ = await signed_in(client)
    key = {"Idempotency-Key": "same-key"}

    mine = await place_order(client, user_headers | key, [(product["id"], 1)])
    # Another user's identical key and body is a request of its own, and so is a different body.
    theirs = await place_order(client, other | key, [(product["id"], 1)])
    theirs_again = await place_order(client, other | {"Idempotency-Key": "other-key"}, [(product["id"], 3)])
    mine_again = await place_order(client, user_headers | {"Idempotency-Key": "other-key"}, [(product["id"], 1)])

    responses = [mine, theirs, theirs_again, mine_again]
    assert [response.status_code for response in responses] == [201] * 4
    assert len({response.json()["id"] for response in responses}) == 4
    assert await stocks(client, product["id"]) == [4]


async def test_idempotency_key_lasts_24_hours(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, stock=10)
    headers = user_headers | {"Idempotency-Key": "daily"}
    first = await place_order(client, headers, [(product["id"], 1)])

    async def age_keys(age: timedelta) -> None:
        async with client.app.state.database.sessionmaker() as session:
            await session.execute(update(IdempotencyKey).values(created_at=datetime.now(UTC) - age))
            await session.commit()

    await age_keys(timedelta(hours=23, minutes=59))
    again = await place_order(client, headers, [(product["id"], 1)])
    assert (again.status_code, again.content) == (201, first.content)
    assert await stocks(client, product["id"]) == [9]

    # Just past the contract's 24 hours (the app's default): the key is fresh, even for another body.
    await age_keys(timedelta(hours=24, seconds=5))
    fresh = await place_order(client, headers, [(product["id"], 3)])
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["id"] != first.json()["id"]
    assert await stocks(client, product["id"]) == [6]
    # From now on the key guards the new body.
    assert (await place_order(client, headers, [(product["id"], 3)])).content == fresh.content
    assert_problem(await place_order(client, headers, [(product["id"], 1)]), 409, "idempotency_key_reused")
    assert await counts(client) == (2, 2)
