"""Malformed and hostile bodies: broken JSON, wrong types and media types, deep nesting, huge numbers, extra fields."""

from typing import Any

import pytest
from httpx import Response

from auth.roles import Role
from tests.conftest import sqlite_only
from tests.helpers import assert_problem, create_product, row_counts, signed_in

CATEGORIES = "/api/v1/categories"
PRODUCTS = "/api/v1/products"
ORDERS = "/api/v1/orders"
LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
# Endpoints that parse a body before anything else, with and without FastAPI's own body handling.
BODY_ENDPOINTS = [CATEGORIES, PRODUCTS, ORDERS, LOGIN, REGISTER]
JSON = {"Content-Type": "application/json"}
TABLES = ("users", "categories", "products", "orders", "order_items")


# Bodies are refused before any query runs: one backend is enough.
pytestmark = sqlite_only


@pytest.fixture
async def admin(client):
    headers, _ = await signed_in(client, Role.ADMIN)
    return {**headers, **JSON}


def problems(responses: dict[Any, Response]) -> dict[Any, tuple[int, str | None]]:
    """(status, code) of each response, to compare a whole table of cases at once: every wrong one shows."""
    return {case: (response.status_code, response.json().get("code")) for case, response in responses.items()}


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_malformed_json_is_400(client, admin, path):
    before = await row_counts(client, *TABLES)
    bodies = [b'{"name": ', b'{"name": "x",}', b"not json", b"\xff\xfe{}", b'{"name": "x"}}', b"{'name': 'x'}"]

    responses = {body: await client.post(path, content=body, headers=admin) for body in bodies}

    assert problems(responses) == dict.fromkeys(bodies, (400, "malformed_json"))
    for response in responses.values():
        assert_problem(response, 400, "malformed_json")
    assert await row_counts(client, *TABLES) == before


# A page on another site can post text/plain or a form without a preflight: such bodies must not act.
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
async def test_bodies_in_other_media_types_are_not_read_as_json(client, admin, content_type):
    before = await row_counts(client, *TABLES)

    response = await client.post(
        CATEGORIES, content=b'{"name": "Sneaky"}', headers={**admin, "Content-Type": content_type}
    )

    assert_problem(response, 422, "validation_error")
    assert await row_counts(client, *TABLES) == before


async def test_login_in_another_media_type_is_415(client):
    before = await row_counts(client, *TABLES)
    response = await client.post(
        LOGIN, content=b'{"username": "a", "password": "b"}', headers={"Content-Type": "text/plain"}
    )
    assert_problem(response, 415, "unsupported_media_type")
    assert await row_counts(client, *TABLES) == before


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_arrays_and_scalars_instead_of_objects_are_422(client, admin, path):
    before = await row_counts(client, *TABLES)
    bodies = [b"[]", b'[{"name": "x"}]', b'"x"', b"1", b"null", b"true"]

    responses = {body: await client.post(path, content=body, headers=admin) for body in bodies}

    assert problems(responses) == dict.fromkeys(bodies, (422, "validation_error"))
    for response in responses.values():
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"]
        assert all(issue["loc"][0] == "body" for issue in problem["errors"]), problem
    assert await row_counts(client, *TABLES) == before


async def test_order_items_that_are_no_objects_are_422(client, admin):
    before = await row_counts(client, *TABLES)
    # An order's items must be objects too.
    response = await client.post(ORDERS, json={"items": [[1, 1]]}, headers=admin)
    assert_problem(response, 422, "validation_error")
    assert await row_counts(client, *TABLES) == before


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
async def test_deeply_nested_json_is_refused(client, admin, path):
    before = await row_counts(client, *TABLES)
    # Deeper than the JSON parser follows: unreadable, so 400.
    too_deep = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_problem(await client.post(path, content=too_deep, headers=admin), 400)
    # Readable, but a list where a string or number belongs.
    nested = {"name": [[[[[[[[[["x"]]]]]]]]]], "username": [[["x"]]], "items": [[[[{}]]]]}
    assert_problem(await client.post(path, json=nested, headers=admin), 422, "validation_error")
    assert await row_counts(client, *TABLES) == before


HUGE_PRODUCT_BODIES = [
    {"name": "x", "price": 1e308, "stock": 1},
    {"name": "x", "price": "1e999999999", "stock": 1},
    {"name": "x", "price": "99999999999999999999999999.99", "stock": 1},
    {"name": "x", "price": "1.00", "stock": 10**100},
    {"name": "x", "price": "1.00", "stock": 1e30},
    {"name": "x", "price": "1.00", "stock": 1, "category_id": 2**63},
]
# Product 1 is the one the test makes, the first on a fresh database.
HUGE_NUMBERS = [("POST", PRODUCTS, body) for body in HUGE_PRODUCT_BODIES]
HUGE_NUMBERS += [("PUT", f"{PRODUCTS}/1", body) for body in HUGE_PRODUCT_BODIES]
HUGE_NUMBERS += [
    ("POST", ORDERS, {"items": [{"product_id": 10**30, "quantity": 1}]}),
    ("POST", ORDERS, {"items": [{"product_id": 1, "quantity": 10**20}]}),
    ("POST", ORDERS, {"items": [{"product_id": 2**31, "quantity": 1}]}),
]
HUGE_NUMBERS += [
    ("GET", path, None)
    for path in (f"{PRODUCTS}/{10**30}", f"{PRODUCTS}?page={10**30}", f"{PRODUCTS}?min_price=1e999999")
]
HUGE_NUMBERS += [("GET", f"{ORDERS}/{2**31}", None)]


@pytest.mark.parametrize(
    ("method", "path", "body"), HUGE_NUMBERS, ids=[f"{m} {p} {b}"[:60] for m, p, b in HUGE_NUMBERS]
)
async def test_huge_numbers_are_422(client, admin, method, path, body):
    product = await create_product(client, admin)
    assert product["id"] == 1
    before = await row_counts(client, *TABLES)

    assert_problem(await client.request(method, path, json=body, headers=admin), 422, "validation_error")

    assert await row_counts(client, *TABLES) == before
    assert (await client.get(f"{PRODUCTS}/{product['id']}", headers=admin)).json() == product


async def test_more_digits_than_python_reads_are_400(client, admin):
    product = await create_product(client, admin)
    before = await row_counts(client, *TABLES)
    # More digits than Python will turn into an int is unreadable JSON: 400, not a crash.
    too_long = b'{"name": "x", "price": "1.00", "stock": ' + b"9" * 5000 + b"}"
    assert_problem(await client.post(PRODUCTS, content=too_long, headers=admin), 400)
    assert await row_counts(client, *TABLES) == before
    assert (await client.get(f"{PRODUCTS}/{product['id']}", headers=admin)).json() == product


@pytest.mark.parametrize("number", ["1e100000000000000000000", "1e-100000000000000000000", "-1E+100000000000000000000"])
async def test_numbers_beyond_any_decimal_are_unreadable_json(client, admin, number):
    before = await row_counts(client, *TABLES)
    body = f'{{"name": {number}, "username": {number}, "price": {number}, "items": {number}}}'.encode()
    for path in BODY_ENDPOINTS:
        assert_problem(await client.post(path, content=body, headers=admin), 400, "malformed_json")
    assert await row_counts(client, *TABLES) == before


# Integer fields of each body, with a JSON number to put in the `{}`; and where the refusal must point.
INTEGER_FIELDS = {
    "stock": (PRODUCTS, '{{"name": "x", "price": "1.00", "stock": {}}}', ["body", "stock"]),
    "category_id": (
        PRODUCTS,
        '{{"name": "x", "price": "1.00", "stock": 1, "category_id": {}}}',
        ["body", "category_id"],
    ),
    "product_id": (ORDERS, '{{"items": [{{"product_id": {}, "quantity": 1}}]}}', ["body", "items", 0, "product_id"]),
    "quantity": (ORDERS, '{{"items": [{{"product_id": 1, "quantity": {}}}]}}', ["body", "items", 0, "quantity"]),
}


@pytest.mark.parametrize("number", ["1.5", "1.0", "1e3", "10e-1", "NaN"])
@pytest.mark.parametrize("field", INTEGER_FIELDS)
async def test_integer_fields_refuse_numbers_with_a_fraction_or_an_exponent(client, admin, field, number):
    # Not truncated, not coerced: an integer field takes a JSON integer, written as one.
    path, template, loc = INTEGER_FIELDS[field]
    before = await row_counts(client, *TABLES)
    response = await client.post(path, content=template.format(number).encode(), headers=admin)
    problem = assert_problem(response, 422, "validation_error")
    assert [issue["loc"] for issue in problem["errors"]] == [loc]
    assert await row_counts(client, *TABLES) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CATEGORIES, {"name": "Extra", "id": 99}),
        (PRODUCTS, {"name": "Extra", "price": "1.00", "stock": 1, "created_at": "2020-01-01T00:00:00Z"}),
        (ORDERS, {"items": [{"product_id": 1, "quantity": 1}], "total": "0.01"}),
        (ORDERS, {"items": [{"product_id": 1, "quantity": 1, "price": "0.01"}]}),
        (REGISTER, {"username": "mallory", "email": "mallory@example.com", "password": "long-enough", "role": "admin"}),
        (LOGIN, {"username": "mallory", "password": "long-enough", "scope": "admin"}),
    ],
    ids=["category-id", "product-created-at", "order-total", "item-price", "register-role", "login-scope"],
)
async def test_unknown_fields_are_422(client, admin, path, body):
    product = await create_product(client, admin)
    assert product["id"] == 1  # the product the order bodies name
    before = await row_counts(client, *TABLES)

    problem = assert_problem(await client.post(path, json=body, headers=admin), 422, "validation_error")

    assert any(issue["type"] == "extra_forbidden" for issue in problem["errors"]), problem
    assert await row_counts(client, *TABLES) == before
