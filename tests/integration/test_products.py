"""The Products, Pages, General and Errors parts of the contract, through the API, on each backend."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from auth.roles import Role
from database.repositories import products as products_repo
from models import Product
from services.catalogue import SORT_KEYS
from tests.conftest import sqlite_only
from tests.helpers import (
    AppClient,
    assert_invalid,
    assert_problem,
    catalogue,
    create_category,
    create_product,
    signed_in,
)

PRODUCTS = "/api/v1/products"
PRODUCT_FIELDS = {"id", "name", "description", "price", "stock", "category_id", "created_at", "updated_at"}
VALID: dict[str, Any] = {"name": "Hammer", "description": "Sturdy", "price": "19.90", "stock": 5, "category_id": None}


def aware(timestamp: str) -> datetime:
    parsed = datetime.fromisoformat(timestamp)
    assert parsed.utcoffset() is not None, timestamp
    return parsed


async def ids_of(client: AppClient, headers: dict[str, str], **params: Any) -> list[int]:
    response = await client.get(PRODUCTS, params={"size": 100, **params}, headers=headers)
    assert response.status_code == 200, (params, response.text)
    return [product["id"] for product in response.json()["items"]]


# Create, read, replace, delete


async def test_create_returns_201_with_location_and_the_product(client: AppClient, admin_headers: dict) -> None:
    category = await create_category(client, admin_headers)
    body = {**VALID, "name": "  Hammer  ", "price": 19.9, "category_id": category["id"]}
    response = await client.post(PRODUCTS, json=body, headers=admin_headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert product.keys() == PRODUCT_FIELDS
    assert response.headers["location"] == f"{PRODUCTS}/{product['id']}"
    assert isinstance(product["id"], int)
    expected = {"name": "Hammer", "description": "Sturdy", "price": "19.90", "stock": 5, "category_id": category["id"]}
    assert {key: product[key] for key in expected} == expected
    assert abs(aware(product["created_at"]) - datetime.now(UTC)) < timedelta(hours=1)
    assert aware(product["updated_at"]) >= aware(product["created_at"])

    read = await client.get(response.headers["location"], headers=admin_headers)
    assert read.status_code == 200
    assert read.json() == product
    # The general rules: JSON, no sniffing, no framing, a request id.
    for answer in (response, read):
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        frame_denied = answer.headers.get("x-frame-options", "").upper() == "DENY"
        assert frame_denied or "frame-ancestors 'none'" in answer.headers.get("content-security-policy", "")
        assert answer.headers["x-request-id"]


async def test_description_html_is_sanitised_and_text_trimmed(client: AppClient, admin_headers: dict) -> None:
    hostile = (
        '  <p onclick="steal()">Solid <b>oak</b><script>alert(1)</script>'
        '<a href="javascript:alert(2)">more</a><img src=x onerror="alert(3)"></p>  '
    )
    created = await create_product(client, admin_headers, name="  Table ", description=hostile)
    replaced = await client.put(
        f"{PRODUCTS}/{created['id']}", json={**VALID, "name": " Chair\t", "description": hostile}, headers=admin_headers
    )
    assert replaced.status_code == 200, replaced.text
    for product, name in [(created, "Table"), (replaced.json(), "Chair")]:
        assert product["name"] == name
        description = product["description"].lower()
        for executable in ("<script", "alert(1)", "onclick", "onerror", "javascript:"):
            assert executable not in description, (executable, description)
        # Harmless formatting and the text itself survive.
        assert "<b>oak</b>" in description
        assert "solid" in description
        assert "more" in description
        assert description == description.strip()
    stored = (await client.get(f"{PRODUCTS}/{created['id']}", headers=admin_headers)).json()
    assert stored == replaced.json()


async def test_put_is_a_full_replacement(client: AppClient, admin_headers: dict) -> None:
    category = await create_category(client, admin_headers)
    other = await create_category(client, admin_headers)
    product = await create_product(
        client, admin_headers, name="Old", description="Old text", price="5.00", stock=3, category_id=category["id"]
    )
    url = f"{PRODUCTS}/{product['id']}"

    body = {"name": "New", "description": "New text", "price": "6.50", "stock": 0, "category_id": other["id"]}
    response = await client.put(url, json=body, headers=admin_headers)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert {key: replaced[key] for key in body} == body
    assert (replaced["id"], replaced["created_at"]) == (product["id"], product["created_at"])
    assert aware(replaced["updated_at"]) >= aware(product["updated_at"])

    # Optional fields left out are reset, not kept.
    response = await client.put(url, json={"name": "Bare", "price": "1.00", "stock": 1}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert (response.json()["description"], response.json()["category_id"]) == ("", None)
    assert (await client.get(url, headers=admin_headers)).json() == response.json()

    # Required fields left out are refused, and the product stays as it was.
    before = (await client.get(url, headers=admin_headers)).json()
    assert_invalid(await client.put(url, json={"name": "Nameless"}, headers=admin_headers), "body", "price")
    assert (await client.get(url, headers=admin_headers)).json() == before


async def test_delete_removes_the_product_from_every_list(client: AppClient, admin_headers: dict) -> None:
    kept = await create_product(client, admin_headers, name="Kept hammer")
    gone = await create_product(client, admin_headers, name="Gone hammer", price="10.00", stock=0)

    response = await client.delete(f"{PRODUCTS}/{gone['id']}", headers=admin_headers)
    assert response.status_code == 204
    assert response.content == b""

    # Absent from every list, whichever filter would have matched it (compared at once, so that every miss shows).
    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({}, [kept["id"]]),
        ({"q": "hammer"}, [kept["id"]]),
        ({"q": "gone"}, []),
        ({"in_stock": "false"}, []),
        ({"min_price": "10.00"}, [kept["id"]]),
        ({"sort": "-id"}, [kept["id"]]),
    ]
    found = {str(params): await ids_of(client, admin_headers, **params) for params, _ in cases}
    assert found == {str(params): expected for params, expected in cases}
    listing = (await client.get(PRODUCTS, headers=admin_headers)).json()
    assert (listing["total"], [item["id"] for item in listing["items"]]) == (1, [kept["id"]])


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("deleted", [True, False], ids=["deleted", "unknown"])
async def test_a_deleted_product_like_an_unknown_one_is_404(
    client: AppClient, admin_headers: dict, deleted: bool, method: str
) -> None:
    gone = await create_product(client, admin_headers)
    assert (await client.delete(f"{PRODUCTS}/{gone['id']}", headers=admin_headers)).status_code == 204
    target = f"{PRODUCTS}/{gone['id'] if deleted else 999999}"

    response = await client.request(method, target, json=VALID if method == "put" else None, headers=admin_headers)

    assert_problem(response, 404, "not_found")


# Validation

MISSING = object()  # the field is left out of the body
INVALID_FIELDS: list[tuple[str, Any]] = [
    ("name", ""),
    ("name", "   "),
    ("name", "x" * 201),
    ("name", None),
    ("name", 12),
    ("description", "x" * 5001),
    ("description", 5),
    ("price", "0"),
    ("price", 0),
    ("price", "-1.00"),
    ("price", "1000000.01"),
    ("price", "1.001"),
    ("price", 1.001),
    ("price", "NaN"),
    ("price", "Infinity"),
    ("price", "abc"),
    ("price", "+5"),  # Decimal() reads these; the documented pattern does not
    ("price", "1e2"),
    ("price", "1.000"),
    ("price", None),
    ("price", True),
    ("stock", "5"),
    ("stock", 5.5),
    ("stock", 5.0),
    ("stock", True),
    ("stock", -1),
    ("stock", 1_000_000_001),
    ("stock", None),
    ("category_id", "1"),
    ("category_id", 0),
    ("category_id", True),
    ("id", 1),
    ("deleted_at", None),
    ("created_at", "2020-01-01T00:00:00Z"),
    ("name", MISSING),
    ("price", MISSING),
    ("stock", MISSING),
]
# PUT shares POST's schema: the first case of each field shows that it applies.
PUT_CASES = [
    next(case for case in INVALID_FIELDS if case[0] == field) for field in dict.fromkeys(f for f, _ in INVALID_FIELDS)
]


def invalid_body(field: str, value: Any, category_id: int) -> dict[str, Any]:
    body = {**VALID, "category_id": category_id, field: value}
    if value is MISSING:
        del body[field]
    return body


def case_id(field: str, value: Any) -> str:
    return f"{field}-missing" if value is MISSING else f"{field}={value!r:.20}"


@pytest.fixture
async def existing(client: AppClient, admin_headers: dict) -> dict[str, Any]:
    """A product in a category, and the catalogue as a client sees it: a refused request must leave both."""
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category_id=category["id"])
    return {"product": product, "category_id": category["id"], "before": await catalogue(client, admin_headers)}


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS, ids=[case_id(*case) for case in INVALID_FIELDS])
async def test_invalid_bodies_are_refused_and_change_nothing(
    client: AppClient, admin_headers: dict, existing: dict, field: str, value: Any
) -> None:
    body = invalid_body(field, value, existing["category_id"])

    assert_invalid(await client.post(PRODUCTS, json=body, headers=admin_headers), "body", field)
    assert await catalogue(client, admin_headers) == existing["before"]


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(("field", "value"), PUT_CASES, ids=[case_id(*case) for case in PUT_CASES])
async def test_invalid_replacements_are_refused_and_change_nothing(
    client: AppClient, admin_headers: dict, existing: dict, field: str, value: Any
) -> None:
    body = invalid_body(field, value, existing["category_id"])
    url = f"{PRODUCTS}/{existing['product']['id']}"

    assert_invalid(await client.put(url, json=body, headers=admin_headers), "body", field)
    assert await catalogue(client, admin_headers) == existing["before"]


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("not_an_object", [[VALID], "Hammer", 5], ids=["list", "string", "number"])
async def test_a_body_that_is_no_object_is_refused(
    client: AppClient, admin_headers: dict, existing: dict, not_an_object: Any
) -> None:
    assert_invalid(await client.post(PRODUCTS, json=not_an_object, headers=admin_headers), "body")
    assert await catalogue(client, admin_headers) == existing["before"]


@pytest.mark.parametrize("method", ["post", "put"])
async def test_an_unknown_category_is_400_and_changes_nothing(
    client: AppClient, admin_headers: dict, existing: dict, method: str
) -> None:
    # Well-formed, but naming a category that does not exist.
    url = PRODUCTS if method == "post" else f"{PRODUCTS}/{existing['product']['id']}"
    body = {**VALID, "category_id": 999999}

    assert_problem(await client.request(method, url, json=body, headers=admin_headers), 400, "unknown_category")
    assert await catalogue(client, admin_headers) == existing["before"]


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    "malformed",
    [b'{"name": "Hammer",', b"not json", b'{"name": "Hammer", "price": "1.00", "stock": 1'],
    ids=["truncated", "not-json", "unclosed"],
)
async def test_malformed_json_is_400_and_changes_nothing(
    client: AppClient, admin_headers: dict, existing: dict, malformed: bytes
) -> None:
    json_headers = {**admin_headers, "Content-Type": "application/json"}

    assert_problem(await client.post(PRODUCTS, content=malformed, headers=json_headers), 400, "malformed_json")
    assert await catalogue(client, admin_headers) == existing["before"]


async def test_a_violation_without_a_domain_error_is_a_500_not_a_conflict(
    client: AppClient, admin_headers: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Negative stock never passes the schema; written anyway, its check constraint has no meaning to tell a client.
    add_product = products_repo.add_product

    async def add_with_negative_stock(session: Any, **fields: Any) -> Product:
        return await add_product(session, **{**fields, "stock": -1})

    monkeypatch.setattr(products_repo, "add_product", add_with_negative_stock)
    before = await catalogue(client, admin_headers)
    assert_problem(await client.post(PRODUCTS, json=VALID, headers=admin_headers), 500, "internal_error")
    assert await catalogue(client, admin_headers) == before


# Money is accepted as a string or a number, and returned as a string with two decimals.
@pytest.mark.parametrize(
    ("sent", "returned"), [("19.9", "19.90"), (7, "7.00"), ("0.01", "0.01"), (1000000, "1000000.00"), (0.5, "0.50")]
)
async def test_prices_are_read_as_strings_or_numbers(
    client: AppClient, admin_headers: dict, sent: Any, returned: str
) -> None:
    response = await client.post(PRODUCTS, json={**VALID, "price": sent}, headers=admin_headers)

    assert response.status_code == 201, response.text
    assert response.json()["price"] == returned
    assert (await client.get(response.headers["location"], headers=admin_headers)).json()["price"] == returned


async def test_boundary_and_optional_values_are_accepted(client: AppClient, admin_headers: dict) -> None:
    edges = {"name": "x" * 200, "description": "d" * 5000, "price": "1000000.00", "stock": 1_000_000_000}
    response = await client.post(PRODUCTS, json={**VALID, **edges}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert {key: response.json()[key] for key in edges} == edges
    response = await client.post(PRODUCTS, json={**VALID, "stock": 0}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["stock"] == 0
    # description and category_id are optional.
    response = await client.post(PRODUCTS, json={"name": "A", "price": 1, "stock": 1}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert (response.json()["description"], response.json()["category_id"]) == ("", None)


# A price written as a JSON number, exactly as it appears in the body.
ONE_AND_A_FAR_CENT = b"1." + b"0" * 300 + b"1"


def product_body(price: bytes) -> bytes:
    return b'{"name": "Rake", "stock": 5, "price": ' + price + b"}"


@pytest.mark.parametrize(
    ("price", "returned"),
    [
        (b"19.9", "19.90"),
        (b"19.90", "19.90"),
        (b'"19.90"', "19.90"),
        (b"0.01", "0.01"),
        (b"1000000", "1000000.00"),
        (b"1000000.00", "1000000.00"),
        (b"1e2", "100.00"),
        (b"1E+2", "100.00"),
        (b"12.5e-1", "1.25"),
    ],
)
async def test_a_price_number_with_at_most_two_decimals_is_stored_exactly(
    client: AppClient, admin_headers: dict, price: bytes, returned: str
) -> None:
    headers = {**admin_headers, "Content-Type": "application/json"}
    response = await client.post(PRODUCTS, content=product_body(price), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["price"] == returned
    assert (await client.get(response.headers["location"], headers=admin_headers)).json()["price"] == returned
    replaced = await client.put(response.headers["location"], content=product_body(price), headers=headers)
    assert (replaced.status_code, replaced.json()["price"]) == (200, returned)


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    "price",
    [
        pytest.param(ONE_AND_A_FAR_CENT, id="1.(300 zeros)1"),
        b"1.00000000000000001",  # 1.0 as a binary float
        b"19.9000000000000001",  # 19.9 as a binary float
        b"0.001",
        b"19.999",
        b"1e-3",
        b"1000000.001",
        b"1000000.00000000001",  # 1000000.0 as a binary float
        b"1e400",
        b"NaN",
        b"Infinity",
        b"-Infinity",
    ],
)
async def test_a_price_number_with_more_than_two_decimals_is_422_and_changes_nothing(
    client: AppClient, admin_headers: dict, price: bytes
) -> None:
    product = await create_product(client, admin_headers)
    before = await catalogue(client, admin_headers)
    headers = {**admin_headers, "Content-Type": "application/json"}
    assert_invalid(await client.post(PRODUCTS, content=product_body(price), headers=headers), "body", "price")
    put = await client.put(f"{PRODUCTS}/{product['id']}", content=product_body(price), headers=headers)
    assert_invalid(put, "body", "price")
    assert await catalogue(client, admin_headers) == before


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", str(2**31)])
async def test_bad_ids_are_422(client: AppClient, user_headers: dict, bad_id: str) -> None:
    assert_invalid(await client.get(f"{PRODUCTS}/{bad_id}", headers=user_headers), "path", "id")


BAD_QUERIES: list[dict[str, Any]] = [
    {"page": 0},
    {"page": -1},
    {"page": "one"},
    {"size": 0},
    {"size": 101},
    {"size": "all"},
    {"category_id": 0},
    {"category_id": "garden"},
    {"min_price": "cheap"},
    {"min_price": "-1"},
    {"min_price": "NaN"},
    {"max_price": "Infinity"},
    {"max_price": "1.001"},
    {"in_stock": "maybe"},
    {"sort": "stock"},
    {"sort": "-"},
    {"sort": "--id"},
    {"sort": "ID"},
    {"sort": "name,id"},
    {"sort": "+price"},
    {"sort": ""},
    {"sort": "id; DROP TABLE products"},
]


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("params", BAD_QUERIES, ids=[str(params) for params in BAD_QUERIES])
async def test_bad_queries_are_422(client: AppClient, user_headers: dict, params: dict[str, Any]) -> None:
    name = next(iter(params))
    assert_invalid(await client.get(PRODUCTS, params=params, headers=user_headers), "query", name)


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    ("supplied", "echoed"),
    [
        pytest.param("client-Req_1.2", True, id="own"),
        pytest.param("x" * 128, True, id="longest"),
        pytest.param("has space", False, id="space"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("semi;colon", False, id="semicolon"),
        pytest.param("", False, id="empty"),
    ],
)
async def test_problems_carry_the_request_id(client: AppClient, user_headers: dict, supplied: str, echoed: bool):
    # The client's own id is echoed when it is acceptable; otherwise the service makes one up.
    response = await client.get(f"{PRODUCTS}/999999", headers={**user_headers, "X-Request-ID": supplied})

    request_id = assert_problem(response, 404)["request_id"]
    if echoed:
        assert request_id == supplied
    else:
        assert request_id not in (supplied, "")


async def test_unknown_routes_and_wrong_methods_are_problems(client: AppClient, user_headers: dict) -> None:
    assert_problem(await client.get("/api/v1/no-such-thing", headers=user_headers), 404)
    assert_problem(await client.patch(PRODUCTS, json={}, headers=user_headers), 405)


# Lists: order, filters, pages


async def test_every_sort_key_in_both_directions(client: AppClient, admin_headers: dict) -> None:
    # Each key orders the four products differently from their ids, and from every other key.
    rows = [("Delta", "3.00", 3), ("Alpha", "20.00", 1), ("Charlie", "100.00", 4), ("Bravo", "9.99", 2)]
    ids = [(await create_product(client, admin_headers, name=name, price=price))["id"] for name, price, _ in rows]
    # created_at is set outright, so the order does not hinge on the clock.
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    async with client.app.state.database.sessionmaker() as session:
        for product_id, (_, _, rank) in zip(ids, rows, strict=True):
            created = epoch + timedelta(minutes=rank)
            await session.execute(update(Product).where(Product.id == product_id).values(created_at=created))
        await session.commit()

    def by(key: Any) -> list[int]:
        return [product_id for product_id, _ in sorted(zip(ids, rows, strict=True), key=key)]

    expected = {
        "id": ids,
        "name": by(lambda pair: pair[1][0]),
        "price": by(lambda pair: float(pair[1][1])),
        "created_at": by(lambda pair: pair[1][2]),
    }
    assert set(expected) == set(SORT_KEYS)
    assert len({tuple(order) for order in expected.values()}) == 4
    expected |= {f"-{key}": ascending[::-1] for key, ascending in expected.items()}
    # Compared at once, so that every key that sorts wrongly shows.
    assert {key: await ids_of(client, admin_headers, sort=key) for key in expected} == expected
    # The default is by id.
    assert await ids_of(client, admin_headers) == ids


async def test_filters(client: AppClient, admin_headers: dict) -> None:
    tools = await create_category(client, admin_headers, "Tools")
    garden = await create_category(client, admin_headers, "Garden")
    made = {}
    for name, price, stock, category in [
        ("Claw Hammer", "10.00", 5, tools),
        ("Sledge HAMMER", "25.50", 0, tools),
        ("Garden Hose", "9.99", 2, garden),
        ("100% Wool Gloves", "10.01", 0, garden),
        ("Plain Gloves", "4.00", 7, None),
        ("O'Brien's \"Best\"; DROP TABLE products; --", "50.00", 1, None),
    ]:
        category_id = category["id"] if category else None
        created = await create_product(
            client, admin_headers, name=name, price=price, stock=stock, category_id=category_id
        )
        made[name] = created["id"]

    def named(*names: str) -> list[int]:
        return sorted(made[name] for name in names)

    cases: list[tuple[dict[str, Any], list[int]]] = [
        ({"category_id": tools["id"]}, named("Claw Hammer", "Sledge HAMMER")),
        ({"category_id": garden["id"]}, named("Garden Hose", "100% Wool Gloves")),
        ({"category_id": 999999}, []),
        ({"q": "hammer"}, named("Claw Hammer", "Sledge HAMMER")),
        ({"q": "HaMmEr"}, named("Claw Hammer", "Sledge HAMMER")),
        ({"q": "%"}, named("100% Wool Gloves")),
        ({"q": "_"}, []),
        ({"q": "gloves"}, named("100% Wool Gloves", "Plain Gloves")),
        # Quotes and SQL in a name or a query are just text.
        ({"q": '\'s "best"; drop table'}, named("O'Brien's \"Best\"; DROP TABLE products; --")),
        # Both bounds are inclusive, and compared as amounts, not text.
        ({"min_price": "10.00", "max_price": "30"}, named("Claw Hammer", "Sledge HAMMER", "100% Wool Gloves")),
        ({"min_price": "10", "max_price": "30"}, named("Claw Hammer", "Sledge HAMMER", "100% Wool Gloves")),
        ({"min_price": "50.00"}, named("O'Brien's \"Best\"; DROP TABLE products; --")),
        ({"max_price": "10.00"}, named("Claw Hammer", "Garden Hose", "Plain Gloves")),
        ({"min_price": "9.99", "max_price": "10.01"}, named("Claw Hammer", "Garden Hose", "100% Wool Gloves")),
        ({"min_price": "10.00", "max_price": "10.00"}, named("Claw Hammer")),
        ({"min_price": "30", "max_price": "49.99"}, []),
        ({"in_stock": "true", "max_price": "49.99"}, named("Claw Hammer", "Garden Hose", "Plain Gloves")),
        ({"in_stock": "false"}, named("Sledge HAMMER", "100% Wool Gloves")),
        ({"category_id": tools["id"], "in_stock": "true"}, named("Claw Hammer")),
        ({"q": "gloves", "max_price": "5", "in_stock": "true"}, named("Plain Gloves")),
        ({}, named(*made)),
    ]
    results = {}
    for params, _ in cases:
        response = await client.get(PRODUCTS, params=params, headers=admin_headers)
        assert response.status_code == 200, (params, response.text)
        body = response.json()
        assert body["total"] == len(body["items"]), params
        results[str(params)] = sorted(item["id"] for item in body["items"])
    assert results == {str(params): expected for params, expected in cases}


async def test_pages(client: AppClient, admin_headers: dict) -> None:
    empty = await client.get(PRODUCTS, headers=admin_headers)
    assert empty.json() == {"items": [], "total": 0, "page": 1, "size": 20, "pages": 0, "next_cursor": None}

    ids = [(await create_product(client, admin_headers))["id"] for _ in range(21)]
    # Defaults: page 1 of size 20.
    first = (await client.get(PRODUCTS, headers=admin_headers)).json()
    assert [item["id"] for item in first["items"]] == ids[:20]
    assert (first["total"], first["page"], first["size"], first["pages"]) == (21, 1, 20, 2)
    seen: list[int] = []
    for page in (1, 2, 3):
        body = (await client.get(PRODUCTS, params={"page": page, "size": 10}, headers=admin_headers)).json()
        assert (body["total"], body["page"], body["size"], body["pages"]) == (21, page, 10, 3)
        seen += [item["id"] for item in body["items"]]
    assert seen == ids

    # Past the last page: 200, no items, the totals still right.
    past = [await client.get(PRODUCTS, params={"page": page, "size": 10}, headers=admin_headers) for page in (4, 1000)]
    assert [(response.status_code, response.json()) for response in past] == [
        (200, {"items": [], "total": 21, "page": page, "size": 10, "pages": 3, "next_cursor": None})
        for page in (4, 1000)
    ]

    bodies = [(await client.get(PRODUCTS, params={"size": size}, headers=admin_headers)).json() for size in (1, 100)]
    assert [(len(body["items"]), body["size"], body["pages"]) for body in bodies] == [(1, 1, 21), (21, 100, 1)]
    # Filters count toward total and pages too.
    filtered = (await client.get(PRODUCTS, params={"max_price": "5"}, headers=admin_headers)).json()
    assert (filtered["total"], filtered["pages"]) == (0, 0)


# Roles, errors and the general rules


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST], ids=lambda role: role.value)
async def test_everyone_signed_in_may_read(client: AppClient, admin_headers: dict, role: Role) -> None:
    product = await create_product(client, admin_headers)
    headers, _ = await signed_in(client, role)

    assert (await client.get(PRODUCTS, headers=headers)).json()["items"] == [product]
    assert (await client.get(f"{PRODUCTS}/{product['id']}", headers=headers)).json() == product


@pytest.mark.parametrize("one", [False, True], ids=["list", "one"])
async def test_nobody_anonymous_may_read(client: AppClient, admin_headers: dict, one: bool) -> None:
    product = await create_product(client, admin_headers)

    response = await client.get(f"{PRODUCTS}/{product['id']}" if one else PRODUCTS)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


# The role is judged before any SQL runs; test_role_matrix asks every endpoint as every role on both backends.
@sqlite_only
@pytest.mark.parametrize("role", [Role.USER, Role.GUEST, None], ids=["user", "guest", "anonymous"])
@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("post", VALID),
        ("post", {"price": "0"}),  # the role is judged before the body
        ("put", VALID),
        ("delete", None),
    ],
    ids=["create", "create-invalid", "replace", "delete"],
)
async def test_only_an_admin_may_write(
    client: AppClient, admin_headers: dict, method: str, body: Any, role: Role | None
) -> None:
    product = await create_product(client, admin_headers)
    target = PRODUCTS if method == "post" else f"{PRODUCTS}/{product['id']}"
    headers = (await signed_in(client, role))[0] if role else {}
    before = await catalogue(client, admin_headers)

    response = await client.request(method, target, json=body, headers=headers)

    if role:
        assert_problem(response, 403, "insufficient_role")
    else:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await catalogue(client, admin_headers) == before
