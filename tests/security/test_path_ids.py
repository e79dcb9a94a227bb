"""Ids in paths and queries have one spelling, plain decimal digits: `88.0`, `+88` or ` 88` are 422, not product 88."""

from collections.abc import Callable
from typing import Any

import pytest
from httpx import AsyncClient

from api.schemas import MAX_ID
from auth.roles import Role
from config import Settings
from main import create_app
from tests.conftest import sqlite_only
from tests.helpers import assert_problem, create_category, create_product, place_order, signed_in

API = "/api/v1"
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# Ways to write the id n other than "n", as they appear in a URL (already percent-encoded where need be).
SPELLINGS: dict[str, Callable[[int], str]] = {
    "fraction": lambda n: f"{n}.0",
    "zeros after the point": lambda n: f"{n}.000",
    "plus sign": lambda n: f"%2B{n}",
    "leading zero": lambda n: f"0{n}",
    "underscore": lambda n: f"0_{n}",
    "leading space": lambda n: f"%20{n}",
    "trailing space": lambda n: f"{n}%20",
    "tab": lambda n: f"%09{n}",
    "newline": lambda n: f"{n}%0A",
    "exponent": lambda n: f"{n}e0",
    "hexadecimal": lambda n: f"0x{n:x}",
    "arabic-indic digits": lambda n: str(n).translate(ARABIC_INDIC),
    "fullwidth digits": lambda n: str(n).translate(FULLWIDTH),
}


async def shop_rows(client: AsyncClient, admin: dict[str, str]) -> dict[str, int]:
    """One row of each kind with an `{id}` route: a category, a product, an order, and the admin itself."""
    category = await create_category(client, admin)
    product = await create_product(client, admin, category_id=category["id"])
    order = await place_order(client, admin, [(product["id"], 1)])
    assert order.status_code == 201, order.text
    me = (await client.get(f"{API}/users/me", headers=admin)).json()
    return {"category": category["id"], "product": product["id"], "order": order.json()["id"], "user": me["id"]}


def id_operations(rows: dict[str, int], spell: Callable[[int], str]) -> list[tuple[str, str, Any]]:
    """Every operation with an `{id}` in its path, the id spelled by `spell`, with a body that would be valid."""
    category, product, order, user = (spell(rows[kind]) for kind in ("category", "product", "order", "user"))
    product_body = {"name": "Renamed", "price": "1.00", "stock": 1}
    return [
        ("GET", f"{API}/categories/{category}", None),
        ("PUT", f"{API}/categories/{category}", {"name": "Renamed"}),
        ("GET", f"{API}/products/{product}", None),
        ("PUT", f"{API}/products/{product}", product_body),
        ("GET", f"{API}/orders/{order}", None),
        ("PATCH", f"{API}/orders/{order}/status", {"status": "paid"}),
        ("POST", f"{API}/orders/{order}/cancel", None),
        ("GET", f"{API}/users/{user}", None),
        ("PATCH", f"{API}/users/{user}", {"is_active": True}),
        ("DELETE", f"{API}/users/{user}/sessions", None),
        ("DELETE", f"{API}/products/{product}", None),
        ("DELETE", f"{API}/categories/{category}", None),
    ]


async def visible_state(client: AsyncClient, admin: dict[str, str], rows: dict[str, int]) -> list[Any]:
    plain = id_operations(rows, str)
    return [(await client.get(path, headers=admin)).json() for method, path, _ in plain if method == "GET"]


def assert_refused_at(response: Any, loc: list[str]) -> None:
    problem = assert_problem(response, 422, "validation_error")
    assert [issue["loc"] for issue in problem["errors"]] == [loc], problem


@sqlite_only  # validation does not depend on the database; plain ids up to MAX_ID run on both, below
@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_an_id_spelled_other_than_in_plain_digits_is_422_everywhere(client, admin_headers, spelling):
    spell = SPELLINGS[spelling]
    rows = await shop_rows(client, admin_headers)
    before = await visible_state(client, admin_headers, rows)

    for method, path, body in id_operations(rows, spell):
        response = await client.request(method, path, json=body, headers=admin_headers)
        assert_refused_at(response, ["path", "id"])
    for name, path, kind in [("category_id", "products", "category"), ("user_id", "orders", "user")]:
        response = await client.get(f"{API}/{path}?{name}={spell(rows[kind])}", headers=admin_headers)
        assert_refused_at(response, ["query", name])
    # Role still comes before validation: to anyone but an admin, an id not written as their own is someone else's.
    user_headers, user = await signed_in(client, Role.USER)
    assert_problem(await client.get(f"{API}/users/{spell(user['id'])}", headers=user_headers), 403)
    assert_problem(await client.get(f"{API}/orders?user_id={spell(user['id'])}", headers=user_headers), 403)

    assert await visible_state(client, admin_headers, rows) == before


async def test_plain_ids_are_read_up_to_the_largest(client, admin_headers):
    rows = await shop_rows(client, admin_headers)
    for method, path, _ in id_operations(rows, str):
        if method == "GET":
            assert (await client.get(path, headers=admin_headers)).status_code == 200, path
    for kind in ("categories", "products", "orders", "users"):
        assert_problem(await client.get(f"{API}/{kind}/{MAX_ID}", headers=admin_headers), 404)
        assert_refused_at(await client.get(f"{API}/{kind}/{MAX_ID + 1}", headers=admin_headers), ["path", "id"])
    listed = await client.get(f"{API}/products?category_id={rows['category']}", headers=admin_headers)
    assert [product["id"] for product in listed.json()["items"]] == [rows["product"]]


def test_openapi_documents_every_id_as_an_integer() -> None:
    document = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:")).openapi()
    bounds = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    documented = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "id":
                    assert parameter["in"] == "path"
                    assert parameter["schema"].items() >= bounds.items(), (method, path)
                    documented.append((method, path))
                elif parameter["name"] in ("category_id", "user_id"):
                    assert {"type": "null"} in parameter["schema"]["anyOf"], (method, path)
                    assert bounds in parameter["schema"]["anyOf"], (method, path)
    assert len(documented) == 12
