"""Insecure direct object references: one user's orders are invisible and untouchable to another."""

from auth.roles import Role
from tests.helpers import assert_problem, create_product, place_order, signed_in

ORDERS = "/api/v1/orders"


def without_request_specifics(problem: dict) -> dict:
    return {key: value for key, value in problem.items() if key not in ("request_id", "detail")}


async def test_another_users_order_is_not_found_and_untouchable(client, admin_headers):
    product = await create_product(client, admin_headers, stock=5)
    alice, alice_user = await signed_in(client)
    bob, bob_user = await signed_in(client)
    placed = await place_order(client, alice, [(product["id"], 2)])
    assert placed.status_code == 201
    order = placed.json()

    # Reading it: the same 404 as for an order that does not exist, so ids reveal nothing.
    foreign = assert_problem(await client.get(f"{ORDERS}/{order['id']}", headers=bob), 404, "not_found")
    missing = assert_problem(await client.get(f"{ORDERS}/{order['id'] + 1000}", headers=bob), 404, "not_found")
    assert without_request_specifics(foreign) == without_request_specifics(missing)

    # Listing: Bob sees only his own orders, and may not ask for Alice's.
    listed = await client.get(ORDERS, headers=bob)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert_problem(await client.get(ORDERS, params={"user_id": alice_user["id"]}, headers=bob), 403)

    # Cancelling or otherwise moving it along is for admins only.
    for status in ("cancelled", "paid"):
        response = await client.patch(f"{ORDERS}/{order['id']}/status", json={"status": status}, headers=bob)
        assert_problem(response, 403)

    # Nothing changed: Alice's order is still hers and pending, and the stock is still reserved.
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=alice)).json() == order
    assert order["status"] == "pending"
    assert order["user_id"] == alice_user["id"] != bob_user["id"]
    stock = (await client.get(f"/api/v1/products/{product['id']}", headers=alice)).json()["stock"]
    assert stock == 3
    # The admin, for contrast, does see it.
    assert (await client.get(f"{ORDERS}/{order['id']}", headers=admin_headers)).status_code == 200


async def test_guest_cannot_read_orders_it_does_not_own(client, admin_headers):
    product = await create_product(client, admin_headers)
    alice, _ = await signed_in(client)
    guest, _ = await signed_in(client, Role.GUEST)
    order = (await place_order(client, alice, [(product["id"], 1)])).json()
    assert_problem(await client.get(f"{ORDERS}/{order['id']}", headers=guest), 404, "not_found")
    assert (await client.get(ORDERS, headers=guest)).json()["items"] == []


async def test_other_users_profiles_are_refused(client):
    alice, alice_user = await signed_in(client)
    bob, _ = await signed_in(client)
    assert_problem(await client.get(f"/api/v1/users/{alice_user['id']}", headers=bob), 403)
    assert_problem(await client.patch(f"/api/v1/users/{alice_user['id']}", json={"is_active": False}, headers=bob), 403)
    assert (await client.get(f"/api/v1/users/{alice_user['id']}", headers=alice)).json()["is_active"] is True
