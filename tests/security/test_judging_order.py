"""The contract's order of judgement: route and method, then authentication (401), role (403), validation (422)."""

import pytest

from tests.helpers import assert_problem


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/products/0"), ("GET", "/api/v1/products?size=0"), ("POST", "/api/v1/orders")]
)
async def test_authentication_comes_before_validation(client, method, path):
    assert_problem(await client.request(method, path, json={"items": []}), 401)


async def test_role_comes_before_validation(client, user_headers, guest_headers):
    # Invalid ids and bodies, but the caller may not do this at all: 403 first.
    assert_problem(await client.get("/api/v1/users/0", headers=user_headers), 403, "insufficient_role")
    assert_problem(await client.get("/api/v1/orders?user_id=abc", headers=user_headers), 403, "insufficient_role")
    assert_problem(await client.post("/api/v1/products", json={"price": "-1"}, headers=user_headers), 403)
    assert_problem(await client.post("/api/v1/orders", json={"items": []}, headers=guest_headers), 403)
    assert_problem(await client.patch("/api/v1/users/0", json={"role": "x"}, headers=user_headers), 403)


async def test_own_id_passes_the_role_check_and_is_then_validated(client, user_headers):
    me = (await client.get("/api/v1/users/me", headers=user_headers)).json()
    assert (await client.get(f"/api/v1/users/{me['id']}", headers=user_headers)).status_code == 200
    own = await client.get("/api/v1/orders", params={"user_id": me["id"], "size": 0}, headers=user_headers)
    assert_problem(own, 422, "validation_error")
