"""POST /orders/{id}/cancel: the owner while pending, an admin while pending or paid; stock goes back once."""

from httpx import AsyncClient

from auth.roles import Role
from tests.helpers import assert_problem, create_product, place_order, row_counts, signed_in, stocks

ORDERS = "/api/v1/orders"
# How to bring a new (pending) order into each status, by an admin.
ROUTE_TO = {
    "pending": [],
    "paid": ["paid"],
    "shipped": ["paid", "shipped"],
    "delivered": ["paid", "shipped", "delivered"],
    "cancelled": ["cancelled"],
}
# Who may cancel from which status, written out from the contract.
CANCELLABLE = {"owner": {"pending"}, "admin": {"pending", "paid"}}


async def order_in(client: AsyncClient, admin: dict[str, str], owner: dict[str, str], status: str, product: int):
    response = await place_order(client, owner, [(product, 2)])
    assert response.status_code == 201, response.text
    order = response.json()
    for step in ROUTE_TO[status]:
        moved = await client.patch(f"{ORDERS}/{order['id']}/status", json={"status": step}, headers=admin)
        assert moved.status_code == 200, moved.text
        order = moved.json()
    return order


async def test_who_may_cancel_from_which_status(client):
    admin, _ = await signed_in(client, Role.ADMIN)
    owner, _ = await signed_in(client)
    callers = {"owner": owner, "admin": admin}
    for caller, headers in callers.items():
        for status in ROUTE_TO:
            product = (await create_product(client, admin, stock=10))["id"]
            order = await order_in(client, admin, owner, status, product)
            stock = await stocks(client, product)

            response = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers)

            case = f"{caller} from {status}"
            if status in CANCELLABLE[caller]:
                assert response.status_code == 200, f"{case}: {response.text}"
                cancelled = response.json()
                assert cancelled == order | {
                    "status": "cancelled",
                    "updated_at": cancelled["updated_at"],
                    "expires_at": None,
                }, case
                assert (await client.get(f"{ORDERS}/{order['id']}", headers=owner)).json() == cancelled, case
                assert await stocks(client, product) == [10], case
            else:
                assert_problem(response, 409, "invalid_status_transition")
                assert (await client.get(f"{ORDERS}/{order['id']}", headers=owner)).json() == order, case
                assert await stocks(client, product) == stock, case


async def test_others_and_guests_find_no_order_to_cancel(client):
    admin, _ = await signed_in(client, Role.ADMIN)
    owner, _ = await signed_in(client)
    stranger, _ = await signed_in(client)
    guest, _ = await signed_in(client, Role.GUEST)
    product = (await create_product(client, admin, stock=10))["id"]
    order = await order_in(client, admin, owner, "pending", product)

    for headers in (stranger, guest):
        foreign = assert_problem(await client.post(f"{ORDERS}/{order['id']}/cancel", headers=headers), 404, "not_found")
        missing = assert_problem(
            await client.post(f"{ORDERS}/{order['id'] + 1}/cancel", headers=headers), 404, "not_found"
        )
        assert foreign["detail"].replace(str(order["id"]), "N") == missing["detail"].replace(str(order["id"] + 1), "N")
    assert_problem(await client.post(f"{ORDERS}/{order['id']}/cancel"), 401)

    assert (await client.get(f"{ORDERS}/{order['id']}", headers=owner)).json() == order
    assert await stocks(client, product) == [8]
    assert await row_counts(client, "orders") == {"orders": 1}


async def test_cancelling_twice_puts_the_stock_back_once(client):
    admin, _ = await signed_in(client, Role.ADMIN)
    owner, _ = await signed_in(client)
    product = (await create_product(client, admin, stock=10))["id"]
    order = await order_in(client, admin, owner, "pending", product)

    first = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=owner)
    again = await client.post(f"{ORDERS}/{order['id']}/cancel", headers=admin)

    assert first.status_code == 200, first.text
    assert_problem(again, 409, "invalid_status_transition")
    assert await stocks(client, product) == [10]


async def test_an_owner_demoted_to_guest_owns_no_orders_to_cancel(client):
    admin, _ = await signed_in(client, Role.ADMIN)
    owner, me = await signed_in(client)
    product = (await create_product(client, admin, stock=10))["id"]
    order = await order_in(client, admin, owner, "pending", product)
    assert (await client.patch(f"/api/v1/users/{me['id']}", json={"role": "guest"}, headers=admin)).status_code == 200

    assert_problem(await client.post(f"{ORDERS}/{order['id']}/cancel", headers=owner), 404, "not_found")
    assert await stocks(client, product) == [8]
