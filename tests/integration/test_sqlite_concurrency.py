"""SQLite under concurrent writers: requests queue for the write lock instead of failing with "database is locked"."""

import asyncio

from auth.roles import Role
from tests.conftest import sqlite_only
from tests.helpers import AppClient, create_category, create_product, signed_in

PRODUCTS = "/api/v1/products"
CREATIONS = 20
UPDATES = 10
pytestmark = sqlite_only


async def test_concurrent_writes_all_land(client: AppClient) -> None:
    admin, _ = await signed_in(client, Role.ADMIN)
    category = await create_category(client, admin)
    existing = [await create_product(client, admin, stock=1) for _ in range(UPDATES)]

    # Every request first reads (the current user), then writes: the pattern that trips SQLite when a read
    # transaction tries to upgrade to a write while another connection holds the lock.
    creations = [
        client.post(
            PRODUCTS,
            json={
                "name": f"Concurrent {index}",
                "price": f"{index + 1}.25",
                "stock": index,
                "category_id": category["id"],
            },
            headers=admin,
        )
        for index in range(CREATIONS)
    ]
    updates = [
        client.put(
            f"{PRODUCTS}/{product['id']}",
            json={"name": f"Updated {product['id']}", "price": "7.70", "stock": 70, "category_id": category["id"]},
            headers=admin,
        )
        for product in existing
    ]
    responses = await asyncio.gather(*creations, *updates)

    statuses = [response.status_code for response in responses]
    assert statuses == [201] * CREATIONS + [200] * UPDATES, [
        response.text for response in responses if response.is_error
    ]

    listing = (await client.get(PRODUCTS, params={"size": 100}, headers=admin)).json()
    assert listing["total"] == CREATIONS + UPDATES
    stored = {item["name"]: (item["price"], item["stock"], item["category_id"]) for item in listing["items"]}
    expected = {f"Concurrent {index}": (f"{index + 1}.25", index, category["id"]) for index in range(CREATIONS)}
    expected |= {f"Updated {product['id']}": ("7.70", 70, category["id"]) for product in existing}
    assert stored == expected
    # Each creation got its own row and its own Location.
    locations = {response.headers["location"] for response in responses[:CREATIONS]}
    assert len(locations) == CREATIONS
