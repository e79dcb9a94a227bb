"""NUL characters (U+0000) in text inputs are refused with 422: PostgreSQL cannot store them, bcrypt refuses them."""

from tests.helpers import PASSWORD, assert_problem, create_category, create_product, register, row_counts, unique

TABLES = ("users", "categories", "products", "refresh_tokens")


async def test_nul_in_text_is_422_and_changes_nothing(client, admin_headers):
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers)
    user = await register(client)
    before = await row_counts(client, *TABLES)
    product_body = {"price": "1.00", "stock": 1}
    requests = [
        (
            "POST",
            "/api/v1/auth/register",
            {"username": unique("u"), "email": "n@example.com", "password": "pass\x00word1"},
        ),
        ("POST", "/api/v1/auth/login", {"username": "ro\x00ot", "password": PASSWORD}),
        ("POST", "/api/v1/auth/login", {"username": user["username"], "password": "pass\x00word"}),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": "a\x00b"}),
        ("POST", "/api/v1/categories", {"name": "a\x00b"}),
        ("PUT", f"/api/v1/categories/{category['id']}", {"name": "a\x00b"}),
        ("POST", "/api/v1/products", {"name": "a\x00b", **product_body}),
        ("PUT", f"/api/v1/products/{product['id']}", {"name": "ok", "description": "a\x00b", **product_body}),
    ]
    for method, path, body in requests:
        response = await client.request(method, path, json=body, headers=admin_headers)
        assert_problem(response, 422, "validation_error")
    assert_problem(await client.get("/api/v1/products", params={"q": "a\x00b"}, headers=admin_headers), 422)
    assert await row_counts(client, *TABLES) == before
