"""A first walk through the catalogue, on each backend."""

from tests.helpers import create_category, create_product


async def test_catalogue_round_trip(client, admin_headers, user_headers):
    category = await create_category(client, admin_headers, "Garden Tools & More")
    assert category["slug"] == "garden-tools-more"
    product = await create_product(client, admin_headers, price="19.90", category_id=category["id"])
    response = await client.get(f"/api/v1/products/{product['id']}", headers=user_headers)
    assert response.status_code == 200
    assert response.json()["price"] == "19.90"
