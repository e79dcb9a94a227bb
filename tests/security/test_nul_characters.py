"""NUL characters (U+0000) in text inputs are refused with 422: PostgreSQL cannot store them, bcrypt refuses them."""

import pytest

from tests.helpers import PASSWORD, assert_problem, create_category, create_product, register, row_counts

TABLES = ("users", "categories", "products", "refresh_tokens")


PRODUCT_BODY = {"price": "1.00", "stock": 1}
# (method, path, body): "{category}", "{product}" and "{username}" stand for the ones the test makes.
REQUESTS = {
    "register": (
        "POST",
        "/api/v1/auth/register",
        {"username": "nul-user", "email": "n@example.com", "password": "pass\x00word1"},
    ),
    "login-username": ("POST", "/api/v1/auth/login", {"username": "ro\x00ot", "password": PASSWORD}),
    "login-password": ("POST", "/api/v1/auth/login", {"username": "{username}", "password": "pass\x00word"}),
    "refresh": ("POST", "/api/v1/auth/refresh", {"refresh_token": "a\x00b"}),
    "create-category": ("POST", "/api/v1/categories", {"name": "a\x00b"}),
    "replace-category": ("PUT", "/api/v1/categories/{category}", {"name": "a\x00b"}),
    "create-product": ("POST", "/api/v1/products", {"name": "a\x00b", **PRODUCT_BODY}),
    "replace-product": ("PUT", "/api/v1/products/{product}", {"name": "ok", "description": "a\x00b", **PRODUCT_BODY}),
}


@pytest.mark.parametrize(("method", "path", "body"), list(REQUESTS.values()), ids=list(REQUESTS))
async def test_nul_in_text_is_422_and_changes_nothing(client, admin_headers, method, path, body):
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers)
    user = await register(client)
    before = await row_counts(client, *TABLES)
    path = path.format(category=category["id"], product=product["id"])
    body = {name: user["username"] if value == "{username}" else value for name, value in body.items()}

    response = await client.request(method, path, json=body, headers=admin_headers)

    assert_problem(response, 422, "validation_error")
    assert await row_counts(client, *TABLES) == before


async def test_nul_in_a_search_is_422(client, admin_headers):
    assert_problem(await client.get("/api/v1/products", params={"q": "a\x00b"}, headers=admin_headers), 422)
