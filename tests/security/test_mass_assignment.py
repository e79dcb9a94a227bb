"""Fields a body does not name cannot be set through it: they are refused with 422 and nothing changes."""

from typing import Any

import pytest
from sqlalchemy import func, select

from models import Order, User
from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, create_product, login, place_order, register


async def count(client, model: Any) -> int:
    async with client.app.state.database.sessionmaker() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


def assert_refused(response, loc: list[Any]) -> None:
    assert response.status_code == 422, response.text
    assert [issue["loc"] for issue in response.json()["errors"]] == [loc]


REGISTRATION = {"username": "mallory", "email": "mallory@example.com", "password": PASSWORD}


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    ("name", "value"), [("role", "admin"), ("role", "user"), ("is_active", False), ("id", 1), ("hashed_password", "x")]
)
async def test_register_refuses_fields_it_does_not_name(client, name, value):
    response = await client.post("/api/v1/auth/register", json={**REGISTRATION, name: value})

    assert_refused(response, ["body", name])
    assert await count(client, User) == 0


async def test_register_without_extra_fields_gets_the_user_role(client):
    body = REGISTRATION
    created = await client.post("/api/v1/auth/register", json=body)
    assert created.status_code == 201
    assert (created.json()["role"], created.json()["is_active"]) == ("user", True)


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(("endpoint", "name"), [("login", "role"), ("refresh", "user_id")])
async def test_auth_bodies_refuse_fields_they_do_not_name(client, endpoint, name):
    user = await register(client)
    tokens = await login(client, user["username"])
    body = {
        "login": {"username": user["username"], "password": PASSWORD, "role": "admin"},
        "refresh": {"refresh_token": tokens["refresh_token"], "user_id": 1},
    }[endpoint]

    assert_refused(await client.post(f"/api/v1/auth/{endpoint}", json=body), ["body", name])
    # A refused refresh does not use up the token.
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    ("field", "in_line"), [("user_id", False), ("total", False), ("status", False), ("id", False), ("price", True)]
)
async def test_order_bodies_refuse_fields_they_do_not_name(client, admin_headers, user_headers, field, in_line):
    product = await create_product(client, admin_headers, price="10.00", stock=5)
    victim = await register(client)
    value = {"user_id": victim["id"], "total": "0.01", "status": "paid", "id": 1, "price": "0.01"}[field]
    line = {"product_id": product["id"], "quantity": 1}
    body = {"items": [{**line, field: value}]} if in_line else {"items": [line], field: value}

    response = await client.post("/api/v1/orders", json=body, headers=user_headers)

    assert_refused(response, ["body", "items", 0, field] if in_line else ["body", field])
    assert await count(client, Order) == 0
    stock = (await client.get(f"/api/v1/products/{product['id']}", headers=user_headers)).json()["stock"]
    assert stock == 5


async def test_a_status_change_sets_nothing_else(client, admin_headers, user_headers):
    product = await create_product(client, admin_headers, price="10.00", stock=5)
    victim = await register(client)
    order = (await place_order(client, user_headers, [(product["id"], 1)])).json()
    status_change = {"status": "paid", "total": "0.01", "user_id": victim["id"]}
    response = await client.patch(f"/api/v1/orders/{order['id']}/status", json=status_change, headers=admin_headers)
    assert response.status_code == 422
    assert {tuple(issue["loc"]) for issue in response.json()["errors"]} == {("body", "total"), ("body", "user_id")}
    unchanged = (await client.get(f"/api/v1/orders/{order['id']}", headers=user_headers)).json()
    assert (unchanged["status"], unchanged["total"]) == ("pending", "10.00")
