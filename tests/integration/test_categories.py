"""The Categories part of the contract, through the API, on each backend."""

import asyncio
from typing import Any

from httpx import AsyncClient

from tests.helpers import create_category, create_product
from tests.integration.catalogue_checks import assert_invalid, assert_problem, catalogue

CATEGORIES = "/api/v1/categories"


async def test_create_returns_201_with_location_and_the_category(client: AsyncClient, admin_headers: dict) -> None:
    response = await client.post(CATEGORIES, json={"name": "  Garden Tools & More  "}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    category = response.json()
    assert category == {"id": category["id"], "name": "Garden Tools & More", "slug": "garden-tools-more"}
    assert isinstance(category["id"], int)
    assert response.headers["location"] == f"{CATEGORIES}/{category['id']}"

    read = await client.get(response.headers["location"], headers=admin_headers)
    assert read.status_code == 200
    assert read.json() == category

    response = await client.post(CATEGORIES, json={"name": "Garden", "slug": "outdoor-2"}, headers=admin_headers)
    assert response.status_code == 201, response.text
    assert response.json()["slug"] == "outdoor-2"


async def test_list_is_ordered_by_name_in_pages(client: AsyncClient, admin_headers: dict) -> None:
    empty = await client.get(CATEGORIES, headers=admin_headers)
    assert empty.status_code == 200
    assert empty.json() == {"items": [], "total": 0, "page": 1, "size": 20, "pages": 0, "next_cursor": None}

    for name in ["Cherry", "Apple", "Banana"]:
        await create_category(client, admin_headers, name)
    listed = (await client.get(CATEGORIES, headers=admin_headers)).json()
    assert [category["name"] for category in listed["items"]] == ["Apple", "Banana", "Cherry"]
    assert listed["items"][0].keys() == {"id", "name", "slug"}
    assert (listed["total"], listed["page"], listed["size"], listed["pages"]) == (3, 1, 20, 1)

    pages = {}
    for page in (1, 2, 3):
        response = await client.get(CATEGORIES, params={"page": page, "size": 2}, headers=admin_headers)
        assert response.status_code == 200
        body = response.json()
        assert (body["total"], body["page"], body["size"], body["pages"]) == (3, page, 2, 2)
        pages[page] = [category["name"] for category in body["items"]]
    # Page 3 is past the last: 200 with no items.
    assert pages == {1: ["Apple", "Banana"], 2: ["Cherry"], 3: []}


async def test_a_taken_slug_is_409_whether_given_or_derived(client: AsyncClient, admin_headers: dict) -> None:
    first = await create_category(client, admin_headers, "Garden Tools")
    other = await create_category(client, admin_headers, "Kitchen")
    before = await catalogue(client, admin_headers)

    attempts = [
        ("post", CATEGORIES, {"name": "Garden tools!"}),  # derives garden-tools
        ("post", CATEGORIES, {"name": "Something else", "slug": "garden-tools"}),
        ("put", f"{CATEGORIES}/{other['id']}", {"name": "Garden -- Tools"}),
        ("put", f"{CATEGORIES}/{other['id']}", {"name": "Kitchen", "slug": "garden-tools"}),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=admin_headers)
        assert_problem(response, 409, "slug_taken")
    assert await catalogue(client, admin_headers) == before

    # A category keeps its own slug when it is replaced.
    response = await client.put(f"{CATEGORIES}/{first['id']}", json={"name": "Garden Tools"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["slug"] == "garden-tools"


async def test_racing_creations_of_one_slug_make_one_category(client: AsyncClient, admin_headers: dict) -> None:
    # Both may pass the "is it taken?" check; the unique constraint must still turn the loser into a 409, not a 500.
    responses = await asyncio.gather(
        *(client.post(CATEGORIES, json={"name": "Garden Tools"}, headers=admin_headers) for _ in range(5))
    )
    assert sorted(response.status_code for response in responses) == [201, 409, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "slug_taken")
    assert (await client.get(CATEGORIES, headers=admin_headers)).json()["total"] == 1


async def test_put_replaces_the_whole_category(client: AsyncClient, admin_headers: dict) -> None:
    category = await create_category(client, admin_headers, "Garden")
    url = f"{CATEGORIES}/{category['id']}"

    response = await client.put(url, json={"name": "  Outdoor Living ", "slug": "outdoor"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"id": category["id"], "name": "Outdoor Living", "slug": "outdoor"}

    # A full replacement: leaving out the slug derives it from the new name rather than keeping the old one.
    response = await client.put(url, json={"name": "Patio & Deck"}, headers=admin_headers)
    assert response.json() == {"id": category["id"], "name": "Patio & Deck", "slug": "patio-deck"}
    assert (await client.get(url, headers=admin_headers)).json() == response.json()


async def test_delete_removes_the_category_and_unknown_ids_are_404(client: AsyncClient, admin_headers: dict) -> None:
    kept = await create_category(client, admin_headers, "Kept")
    category = await create_category(client, admin_headers, "Gone")
    url = f"{CATEGORIES}/{category['id']}"

    response = await client.delete(url, headers=admin_headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(CATEGORIES, headers=admin_headers)).json()["items"] == [kept]
    # The deleted id, like one that never existed, is 404 for every method.
    for target in (url, f"{CATEGORIES}/999999"):
        for method, body in [("get", None), ("put", {"name": "New"}), ("delete", None)]:
            assert_problem(await client.request(method, target, json=body, headers=admin_headers), 404, "not_found")


async def test_a_category_with_products_cannot_be_deleted(client: AsyncClient, admin_headers: dict) -> None:
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category_id=category["id"])
    url = f"{CATEGORIES}/{category['id']}"

    assert_problem(await client.delete(url, headers=admin_headers), 409, "category_in_use")
    assert (await client.get(url, headers=admin_headers)).json() == category

    # Once its last product is gone, it can go too.
    assert (await client.delete(f"/api/v1/products/{product['id']}", headers=admin_headers)).status_code == 204
    assert (await client.delete(url, headers=admin_headers)).status_code == 204


INVALID_BODIES: list[tuple[Any, tuple[str, ...]]] = [
    ({}, ("body", "name")),
    ({"name": ""}, ("body", "name")),
    ({"name": "   "}, ("body", "name")),
    ({"name": "x" * 101}, ("body", "name")),
    ({"name": 5}, ("body", "name")),
    ({"name": None}, ("body", "name")),
    ({"name": "Tools", "slug": "Bad Slug"}, ("body", "slug")),
    ({"name": "Tools", "slug": "tools-"}, ("body", "slug")),
    ({"name": "Tools", "slug": ""}, ("body", "slug")),
    ({"name": "Tools", "id": 7}, ("body", "id")),
    ({"name": "Äöü"}, ("body", "slug")),  # nothing to derive a slug from
    ([{"name": "Tools"}], ("body",)),
]


async def test_invalid_bodies_are_422_and_change_nothing(client: AsyncClient, admin_headers: dict) -> None:
    category = await create_category(client, admin_headers, "Tools")
    before = await catalogue(client, admin_headers)
    for body, loc in INVALID_BODIES:
        assert_invalid(await client.post(CATEGORIES, json=body, headers=admin_headers), *loc)
        assert_invalid(await client.put(f"{CATEGORIES}/{category['id']}", json=body, headers=admin_headers), *loc)
    assert await catalogue(client, admin_headers) == before


async def test_path_and_query_bounds(client: AsyncClient, user_headers: dict) -> None:
    for bad_id in ["0", "-1", "abc", "1.5", str(2**31)]:
        assert_invalid(await client.get(f"{CATEGORIES}/{bad_id}", headers=user_headers), "path", "id")
    for params in [{"page": 0}, {"page": -1}, {"page": "x"}, {"size": 0}, {"size": 101}, {"size": "ten"}]:
        name = next(iter(params))
        assert_invalid(await client.get(CATEGORIES, params=params, headers=user_headers), "query", name)
    for size in (1, 100):  # the bounds themselves are allowed
        response = await client.get(CATEGORIES, params={"size": size}, headers=user_headers)
        assert response.status_code == 200
        assert response.json()["size"] == size


async def test_everyone_signed_in_may_read_only_an_admin_may_write(
    client: AsyncClient, admin_headers: dict, user_headers: dict, guest_headers: dict
) -> None:
    category = await create_category(client, admin_headers, "Tools")
    url = f"{CATEGORIES}/{category['id']}"
    for headers in (user_headers, guest_headers):
        assert (await client.get(CATEGORIES, headers=headers)).json()["items"] == [category]
        assert (await client.get(url, headers=headers)).json() == category

    before = await catalogue(client, admin_headers)
    for method, target, body in [
        ("post", CATEGORIES, {"name": "Mine"}),
        ("post", CATEGORIES, {"name": ""}),  # the role is judged before the body
        ("put", url, {"name": "Mine"}),
        ("delete", url, None),
    ]:
        for headers in (user_headers, guest_headers):
            assert_problem(await client.request(method, target, json=body, headers=headers), 403)
        response = await client.request(method, target, json=body)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await catalogue(client, admin_headers) == before
