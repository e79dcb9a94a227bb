"""Conditional requests: ETags on single-resource reads, 304 on If-None-Match, 412 on a failed If-Match.

Every resource with an `{id}` URL, as a client sees it: status, headers, body, and what the database holds after.
"""

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from itertools import cycle
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import text

from auth.roles import Role
from config import Settings
from main import create_app
from tests.helpers import (
    assert_problem,
    create_category,
    create_product,
    place_order,
    signed_in,
    stocks,
    wait_for_lock_waiters,
)

API = "/api/v1"
STRONG_ETAG = re.compile(r'"[^"]*"')


def etag_of(response: Response) -> str:
    tag = response.headers["etag"]
    assert STRONG_ETAG.fullmatch(tag), tag
    return tag


async def current(client: AsyncClient, path: str, headers: dict[str, str]) -> tuple[str, Any]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return etag_of(response), response.json()


@dataclass
class Shop:
    admin: dict[str, str]
    customer: dict[str, str]
    customer_id: int
    paths: dict[str, str]


async def open_shop(client: AsyncClient) -> Shop:
    admin, _ = await signed_in(client, Role.ADMIN)
    customer, me = await signed_in(client)
    category = await create_category(client, admin)
    product = await create_product(client, admin, stock=10, category_id=category["id"])
    orders = [await place_order(client, customer, [(product["id"], 2)]) for _ in range(2)]
    assert [order.status_code for order in orders] == [201, 201]
    paths = {
        "category": f"{API}/categories/{category['id']}",
        "product": f"{API}/products/{product['id']}",
        "order": f"{API}/orders/{orders[0].json()['id']}",
        "second order": f"{API}/orders/{orders[1].json()['id']}",
        "user": f"{API}/users/{me['id']}",
        "me": f"{API}/users/me",
    }
    return Shop(admin, customer, me["id"], paths)


async def test_every_single_resource_read_carries_a_strong_etag_and_answers_304(client):
    shop = await open_shop(client)

    for kind, path in shop.paths.items():
        headers = shop.customer if kind in ("order", "second order", "me", "user") else shop.admin
        tag, body = await current(client, path, headers)
        version = tag.strip('"')
        for matching in (tag, f'"nope", {tag}', f"W/{tag}", "*"):
            response = await client.get(path, headers=headers | {"If-None-Match": matching})
            assert response.status_code == 304, (kind, matching, response.text)
            assert response.content == b"", kind
            assert response.headers["etag"] == tag, kind
            head = await client.head(path, headers=headers | {"If-None-Match": matching})
            assert (head.status_code, head.headers["etag"]) == (304, tag), kind
        # Other tags, and ours spelled otherwise, are not the current one: the full representation.
        for other in ('"999999"', f'"0{version}"', f"{tag[:-1]} {tag[-1]}".replace(" ", "x"), ""):
            response = await client.get(path, headers=headers | {"If-None-Match": other})
            assert (response.status_code, response.json()) == (200, body), (kind, other)
            assert response.headers["etag"] == tag


async def test_etags_change_with_every_change_stock_included(client):
    shop = await open_shop(client)
    product, order, user = shop.paths["product"], shop.paths["order"], shop.paths["user"]
    product_tag, product_body = await current(client, product, shop.admin)
    order_tag, _ = await current(client, order, shop.customer)
    user_tag, _ = await current(client, user, shop.admin)
    me_tag, _ = await current(client, shop.paths["me"], shop.customer)
    assert me_tag == user_tag

    # An order elsewhere takes stock: the product's representation, and so its tag, changed.
    assert (await place_order(client, shop.customer, [(product_body["id"], 1)])).status_code == 201
    taken_tag, taken = await current(client, product, shop.admin)
    assert (taken["stock"], taken_tag != product_tag) == (product_body["stock"] - 1, True)
    # Cancelling puts stock back: a new product tag, and a new order tag.
    cancelled = await client.post(f"{order}/cancel", headers=shop.customer)
    assert cancelled.status_code == 200, cancelled.text
    restored_tag, restored = await current(client, product, shop.admin)
    assert restored["stock"] == taken["stock"] + 2
    assert len({product_tag, taken_tag, restored_tag}) == 3
    new_order_tag, _ = await current(client, order, shop.customer)
    assert new_order_tag != order_tag
    assert etag_of(cancelled) == new_order_tag
    # A role change is a change of the user, seen at both of its URLs.
    patched = await client.patch(user, json={"role": "guest"}, headers=shop.admin)
    assert patched.status_code == 200, patched.text
    assert etag_of(patched) != user_tag
    assert (await current(client, user, shop.admin))[0] == etag_of(patched)
    assert (await current(client, shop.paths["me"], shop.customer))[0] == etag_of(patched)
    # An old tag no longer gets a 304.
    response = await client.get(product, headers=shop.admin | {"If-None-Match": product_tag})
    assert response.status_code == 200


@dataclass(frozen=True)
class Write:
    method: str
    resource: str  # key of Shop.paths: the resource whose ETag guards the write
    suffix: str = ""
    body: dict[str, Any] | None = None
    by_customer: bool = False
    status: int = 200


def writes(shop: Shop) -> list[Write]:
    # In an order where each succeeds after the ones before it (the user is disabled once the customer is done).
    return [
        Write("PUT", "category", body={"name": "Renamed"}),
        Write("PUT", "product", body={"name": "Renamed", "price": "3.00", "stock": 99}),
        Write("POST", "order", "/cancel", by_customer=True),
        Write("PATCH", "second order", "/status", {"status": "paid"}),
        Write("PATCH", "user", body={"is_active": False}),
        # The admin's own profile: reads in these tests are the admin's, so /users/me is theirs.
        Write("PATCH", "me", body={"username": f"renamed-{shop.customer_id}"}),
        Write("DELETE", "product", status=204),
        Write("DELETE", "category", status=204),
    ]


async def test_if_match_that_names_no_current_etag_is_412_and_changes_nothing(client):
    shop = await open_shop(client)
    for write in writes(shop):
        path = shop.paths[write.resource]
        headers = shop.customer if write.by_customer else shop.admin
        tag, before = await current(client, path, shop.admin)
        for stale in ('"999999"', f"W/{tag}", f'"0{tag.strip(chr(34))}"', '"a", W/"b"', ""):
            response = await client.request(
                write.method, path + write.suffix, json=write.body, headers=headers | {"If-Match": stale}
            )
            problem = assert_problem(response, 412, "precondition_failed")
            assert problem["title"] == "Precondition Failed"
            assert await current(client, path, shop.admin) == (tag, before), (write, stale)


async def test_if_match_with_the_current_etag_writes_and_returns_the_new_one(client):
    for star in (False, True):
        shop = await open_shop(client)
        for write in writes(shop):
            path = shop.paths[write.resource]
            headers = shop.customer if write.by_customer else shop.admin
            tag, _ = await current(client, path, shop.admin)
            condition = "*" if star else f'"nope", {tag}'
            response = await client.request(
                write.method, path + write.suffix, json=write.body, headers=headers | {"If-Match": condition}
            )
            assert response.status_code == write.status, (write, response.text)
            if write.status == 200:
                assert etag_of(response) != tag
                assert (await current(client, path, shop.admin))[0] == etag_of(response), write
            else:
                assert (await client.get(path, headers=shop.admin)).status_code == 404


async def test_authentication_role_and_ownership_are_judged_before_the_precondition(client):
    shop = await open_shop(client)
    stranger, _ = await signed_in(client)
    guest, _ = await signed_in(client, Role.GUEST)
    stale = {"If-Match": '"999999"'}
    product, order = shop.paths["product"], shop.paths["order"]

    assert_problem(await client.put(product, json={}, headers=stale), 401)
    assert_problem(await client.delete(product, headers=shop.customer | stale), 403, "insufficient_role")
    assert_problem(await client.patch(f"{order}/status", json={"status": "paid"}, headers=stale | shop.customer), 403)
    for outsider in (stranger, guest):
        assert_problem(await client.post(f"{order}/cancel", headers=outsider | stale), 404, "not_found")
    assert_problem(await client.delete(f"{API}/products/999999", headers=shop.admin | stale), 404)
    # The precondition comes before the order's own refusals: a stale tag on a finished order is 412, not 409.
    assert (await client.post(f"{order}/cancel", headers=shop.customer)).status_code == 200
    assert_problem(await client.post(f"{order}/cancel", headers=shop.customer | stale), 412, "precondition_failed")
    assert_problem(await client.post(f"{order}/cancel", headers=shop.customer), 409, "invalid_status_transition")


async def test_malformed_conditional_headers_are_422_and_change_nothing(client):
    shop = await open_shop(client)
    product = shop.paths["product"]
    tag, before = await current(client, product, shop.admin)

    for value in ["7", tag[1:], "W/7", f"{tag} {tag}", f"*, {tag}"]:
        body = {"name": "Renamed", "price": "3.00", "stock": 1}
        problem = assert_problem(await client.put(product, json=body, headers=shop.admin | {"If-Match": value}), 422)
        assert [issue["loc"] for issue in problem["errors"]] == [["header", "If-Match"]], value
        problem = assert_problem(await client.get(product, headers=shop.admin | {"If-None-Match": value}), 422)
        assert [issue["loc"] for issue in problem["errors"]] == [["header", "If-None-Match"]], value
    assert await current(client, product, shop.admin) == (tag, before)


async def test_without_if_match_writes_behave_as_before(client):
    shop = await open_shop(client)
    product = shop.paths["product"]
    tag, _ = await current(client, product, shop.admin)
    body = {"name": "Unconditional", "price": "3.00", "stock": 5}

    response = await client.put(product, json=body, headers=shop.admin)

    assert response.status_code == 200, response.text
    assert etag_of(response) != tag
    assert response.json()["stock"] == 5


ROW_LOCKS = {
    "products": text("SELECT id FROM products WHERE id = :id FOR UPDATE"),
    "orders": text("SELECT id FROM orders WHERE id = :id FOR UPDATE"),
}


async def behind_row_lock(client: AsyncClient, table: str, row_id: int, requests: list[Awaitable[Response]]):
    """On PostgreSQL, hold the row's lock until every request waits for it, then let them race (see
    test_order_concurrency.behind_order_lock). SQLite runs one writer at a time anyway."""
    engine = client.app.state.database.engine
    if engine.dialect.name != "postgresql":
        return list(await asyncio.gather(*requests))
    async with engine.connect() as holder:
        await holder.execute(ROW_LOCKS[table], {"id": row_id})
        tasks = [asyncio.ensure_future(request) for request in requests]
        await wait_for_lock_waiters(engine, tasks)
        await holder.rollback()
        return list(await asyncio.gather(*tasks))


def codes(responses: list[Response]) -> list[int]:
    return sorted(response.status_code for response in responses)


async def test_racing_writes_with_one_if_match_on_two_instances_give_exactly_one_success(app_client):
    async with app_client() as first, app_client() as second:
        admin, _ = await signed_in(first, Role.ADMIN)
        customer, _ = await signed_in(first)
        for round_number in range(5):
            product = await create_product(first, admin, stock=10)
            path = f"{API}/products/{product['id']}"
            tag, _ = await current(first, path, admin)
            racing = [
                app.put(
                    path,
                    json={k: product[k] for k in ("name", "description", "price", "category_id")} | {"stock": 10 + n},
                    headers=admin | {"If-Match": tag},
                )
                for n, app in zip(range(1, 3), cycle([first, second]), strict=False)
            ]
            responses = await behind_row_lock(first, "products", product["id"], racing)
            assert codes(responses) == [200, 412], [r.text for r in responses]
            winner = next(r for r in responses if r.status_code == 200)
            assert await stocks(first, product["id"]) == [winner.json()["stock"]], round_number

            # An order's status, written with a plain conditional UPDATE: an admin's cancel and a payment race.
            order = (await place_order(first, customer, [(product["id"], 1)])).json()
            path = f"{API}/orders/{order['id']}"
            tag, _ = await current(first, path, admin)
            responses = await behind_row_lock(
                first,
                "orders",
                order["id"],
                [
                    first.post(f"{path}/cancel", headers=admin | {"If-Match": tag}),
                    second.patch(f"{path}/status", json={"status": "paid"}, headers=admin | {"If-Match": tag}),
                ],
            )
            assert codes(responses) == [200, 412], [r.text for r in responses]
            final = (await first.get(path, headers=admin)).json()["status"]
            expected_stock = winner.json()["stock"] - (1 if final == "paid" else 0)
            assert await stocks(first, product["id"]) == [expected_stock], final


def test_openapi_documents_the_conditional_headers_on_every_operation_that_takes_them() -> None:
    document = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:")).openapi()
    reads, writes = [], []
    for path, operations in document["paths"].items():
        single = path.endswith("/{id}") or path == f"{API}/users/me"
        for method, operation in operations.items():
            headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            responses = operation["responses"]
            if method == "get" and single:
                reads.append(path)
                assert "If-None-Match" in headers, path
                assert {"200", "304"} <= set(responses), path
                assert "content" not in responses["304"], path
                for status in ("200", "304"):
                    assert responses[status]["headers"]["ETag"]["required"] is True, (path, status)
            # Signing out everywhere changes no representation: it takes no precondition.
            elif (method in ("put", "patch", "delete") and not path.endswith("/sessions")) or path.endswith("/cancel"):
                writes.append((method, path))
                assert "If-Match" in headers, (method, path)
                assert "application/problem+json" in responses["412"]["content"], (method, path)
                if "200" in responses:
                    assert "ETag" in responses["200"]["headers"], (method, path)
    assert len(reads) == 5
    assert len(writes) == 9
    placed = document["paths"][f"{API}/orders"]["post"]["responses"]["201"]["headers"]
    assert {"Location", "Idempotency-Replayed"} <= set(placed)
