"""SQL injection payloads in every string and id a client can send: refused or taken literally, never run."""

from urllib.parse import quote

import pytest

from auth.roles import Role
from tests.helpers import create_category, create_product, place_order, register, row_counts, signed_in, unique

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE products; --",
    "1) OR (1=1",
    "Robert'); DROP TABLE users; --",
    "' UNION SELECT id, username, hashed_password FROM users --",
    "%' OR name LIKE '%",
    "_%",
    "1' AND 1=CAST((SELECT version()) AS int) --",
    "\\'; DELETE FROM categories; --",
]
# Values that must be refused by validation never reach SQL: a few of them show it, the rest add only time.
REFUSED_PAYLOADS = PAYLOADS[:5]
TABLES = ("users", "categories", "products", "orders", "order_items")


@pytest.fixture
async def catalogue(client, admin_headers):
    category = await create_category(client, admin_headers, "Tools")
    for name, price in (("Hammer", "10.00"), ("Saw", "20.00")):
        await create_product(client, admin_headers, name=name, price=price, category_id=category["id"])
    return category


async def snapshot(client, headers) -> tuple:
    """What a client can read of the catalogue, and how many rows each table holds."""
    products = (await client.get("/api/v1/products", params={"size": 100}, headers=headers)).json()["items"]
    categories = (await client.get("/api/v1/categories", params={"size": 100}, headers=headers)).json()["items"]
    return products, categories, await row_counts(client, *TABLES)


# How each query parameter answers a payload: a product search finds nothing, everything else is refused.
QUERY_PARAMETERS = [
    ("/api/v1/products", "q", 200),
    ("/api/v1/products", "sort", 422),
    ("/api/v1/products", "category_id", 422),
    ("/api/v1/products", "min_price", 422),
    ("/api/v1/products", "max_price", 422),
    ("/api/v1/products", "in_stock", 422),
    ("/api/v1/products", "page", 422),
    ("/api/v1/products", "size", 422),
    ("/api/v1/orders", "status", 422),
    ("/api/v1/orders", "user_id", 422),
    ("/api/v1/categories", "page", 422),
    ("/api/v1/users", "size", 422),
]


# The tests below send every payload and compare all the answers at once, so that each one that gets through shows.
@pytest.mark.parametrize(
    ("path", "parameter", "status"), QUERY_PARAMETERS, ids=[f"{path} {name}" for path, name, _ in QUERY_PARAMETERS]
)
async def test_query_parameters(client, admin_headers, catalogue, path, parameter, status):
    before = await snapshot(client, admin_headers)

    answers = {}
    for payload in PAYLOADS if status == 200 else REFUSED_PAYLOADS:
        response = await client.get(path, params={parameter: payload}, headers=admin_headers)
        answers[payload] = (response.status_code, response.json().get("items"))

    assert answers == {payload: (status, [] if status == 200 else None) for payload in answers}
    assert await snapshot(client, admin_headers) == before


PATH_TARGETS = [("GET", resource) for resource in ("products", "categories", "orders", "users")]
PATH_TARGETS += [("DELETE", "products"), ("DELETE", "categories"), ("PATCH", "users"), ("PATCH", "orders")]


@pytest.mark.parametrize(("method", "resource"), PATH_TARGETS, ids=[f"{m} {r}" for m, r in PATH_TARGETS])
async def test_path_ids(client, admin_headers, catalogue, method, resource):
    before = await snapshot(client, admin_headers)
    suffix = "/status" if (method, resource) == ("PATCH", "orders") else ""

    statuses = {}
    for payload in REFUSED_PAYLOADS:
        path = f"/api/v1/{resource}/{quote(payload, safe='')}{suffix}"
        response = await client.request(method, path, json={"status": "cancelled"}, headers=admin_headers)
        statuses[payload] = response.status_code

    assert statuses == dict.fromkeys(REFUSED_PAYLOADS, 422)
    assert await snapshot(client, admin_headers) == before


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_login_and_registration(client, admin_headers, catalogue, payload):
    await register(client, username="alice")
    before = await snapshot(client, admin_headers)
    refused = await client.post("/api/v1/auth/login", json={"username": "alice", "password": "wrong-password"})
    for password in ("wrong-password", payload):
        response = await client.post("/api/v1/auth/login", json={"username": payload, "password": password})
        assert response.status_code == 401, response.text
        body = response.json()
        assert {**body, "request_id": None} == {**refused.json(), "request_id": None}
    for account in ({"username": payload, "email": "x@example.com"}, {"username": "mallory", "email": payload}):
        response = await client.post("/api/v1/auth/register", json={**account, "password": "long-enough-password"})
        assert response.status_code == 422, response.text
    assert await snapshot(client, admin_headers) == before


async def test_idempotency_key_is_stored_literally(client, admin_headers, catalogue):
    product = (await snapshot(client, admin_headers))[0][0]
    for payload in PAYLOADS[:4]:
        # A key is visible ASCII, no spaces: SQL takes a comment for a space just as well.
        headers = {**admin_headers, "Idempotency-Key": payload.replace(" ", "/**/")}
        first = await place_order(client, headers, [(product["id"], 1)])
        again = await place_order(client, headers, [(product["id"], 1)])
        assert first.status_code == again.status_code == 201, first.text
        assert again.json() == first.json()
    counts = await row_counts(client, "orders")
    assert counts == {"orders": 4}


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_names_are_stored_literally(client, admin_headers, catalogue, payload):
    products_before, categories_before, counts_before = await snapshot(client, admin_headers)
    user_headers, _ = await signed_in(client, Role.USER)
    category = await create_category_named(client, admin_headers, payload)
    product = await create_product(client, admin_headers, name=payload, description=payload)
    for path, expected in (
        (f"/api/v1/categories/{category['id']}", category),
        (f"/api/v1/products/{product['id']}", product),
    ):
        stored = (await client.get(path, headers=user_headers)).json()
        assert stored["name"] == payload
        assert stored == expected
    # Searching for the payload finds exactly the product named by it: `%` and `_` match only themselves.
    found = await client.get("/api/v1/products", params={"q": payload}, headers=user_headers)
    assert [item["id"] for item in found.json()["items"]] == [product["id"]]

    products, categories, counts = await snapshot(client, admin_headers)
    assert products == [*products_before, product]
    assert sorted(item["name"] for item in categories) == sorted([payload, *(c["name"] for c in categories_before)])
    added = {"users": 1, "categories": 1, "products": 1}
    assert counts == {table: count + added.get(table, 0) for table, count in counts_before.items()}


async def create_category_named(client, admin_headers, name: str) -> dict:
    response = await client.post(
        "/api/v1/categories", json={"name": name, "slug": unique("slug-")}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    return response.json()
