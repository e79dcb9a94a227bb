"""Fields a body does not name cannot be set through it: they are refused with 422 and nothing changes."""

from typing import Any

from sqlalchemy import func, select

from models import Order, User
from tests.helpers import PASSWORD, create_product, login, place_order, register


async def count(client, model: Any) -> int:
    async with client.app.state.database.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def assert_refused(response, loc: list[Any]) -> None:
    assert response.status_code == 422, response.text
    assert [issue["loc"] for issue in response.json()["errors"]] == [loc]


async def test_register_refuses_fields_it_does_not_name(client):
    body = {"username": "mallory", "email": "mallory@example.com", "password": PASSWORD}
    for name, value in [("role", "admin"), ("role", "user"), ("is_active", False), ("id", 1), ("hashed_password", "x")]:
        response = await client.post("/api/v1/auth/register", json={**body, name: value})
        assert_refused(response, ["body", name])
    assert await count(client, User) == 0
    # The same account without the extra fields is fine, and gets the user role.
    created = await client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201
    assert (created.json()["role"], created.json()["is_active"]) == ("user", True)


async def test_auth_bodies_refuse_fields_they_do_not_name(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    bodies = [
        ("/api/v1/auth/login", {"username": user["username"], "password": PASSWORD, "role": "admin"}, "role"),
        ("/api/v1/auth/refresh", {"refresh_token": tokens["refresh_token"], "user_id": 1}, "user_id"),
    ]
    for path, body, name in bodies:
        assert_refused(await client.post(path, json=body), ["body", name])
    # The refused refresh did not use up the token.
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


async def test_order_bodies_refuse_fields_they_do_not_name(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, price="10.00", stock=5)
    victim = await register(client)
    line = {"product_id": product["id"], "quantity": 1}
    attempts = [
        ({"items": [line], "user_id": victim["id"]}, ["body", "user_id"]),
        ({"items": [line], "total": "0.01"}, ["body", "total"]),
        ({"items": [line], "status": "paid"}, ["body", "status"]),
        ({"items": [line], "id": 1}, ["body", "id"]),
        ({"items": [{**line, "price": "0.01"}]}, ["body", "items", 0, "price"]),
    ]
    for body, loc in attempts:
        assert_refused(await client.post("/api/v1/orders", json=body, headers=user_headers), loc)
    assert await count(client, Order) == 0
    stock = (await client.get(f"/api/v1/products/{product['id']}", headers=user_headers)).json()["stock"]
    assert stock == 5

    order = (await place_order(client, user_headers, [(product["id"], 1)])).json()
    status_change = {"status": "paid", "total": "0.01", "user_id": victim["id"]}
    response = await client.patch(f"/api/v1/orders/{order['id']}/status", json=status_change, headers=admin_headers)
    assert response.status_code == 422
    assert {tuple(issue["loc"]) for issue in response.json()["errors"]} == {("body", "total"), ("body", "user_id")}
    unchanged = (await client.get(f"/api/v1/orders/{order['id']}", headers=user_headers)).json()
    assert (unchanged["status"], unchanged["total"]) == ("pending", "10.00")
