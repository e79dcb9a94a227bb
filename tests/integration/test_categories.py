"""The Categories part of the contract, through the API, on each backend."""

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

from auth.roles import Role
from tests.conftest import sqlite_only
from tests.helpers import (
    AppClient,
    assert_invalid,
    assert_problem,
    catalogue,
    create_category,
    create_product,
    signed_in,
)

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


@pytest.mark.parametrize(
    ("method", "body"),
    [
        pytest.param("post", {"name": "Garden tools!"}, id="create-derived"),
        pytest.param("post", {"name": "Something else", "slug": "garden-tools"}, id="create-given"),
        pytest.param("put", {"name": "Garden -- Tools"}, id="replace-derived"),
        pytest.param("put", {"name": "Kitchen", "slug": "garden-tools"}, id="replace-given"),
    ],
)
async def test_a_taken_slug_is_409_whether_given_or_derived(
    client: AsyncClient, admin_headers: dict, method: str, body: dict
) -> None:
    await create_category(client, admin_headers, "Garden Tools")
    other = await create_category(client, admin_headers, "Kitchen")
    before = await catalogue(client, admin_headers)
    url = CATEGORIES if method == "post" else f"{CATEGORIES}/{other['id']}"

    response = await client.request(method, url, json=body, headers=admin_headers)

    assert_problem(response, 409, "slug_taken")
    assert await catalogue(client, admin_headers) == before


async def test_a_category_keeps_its_own_slug_when_replaced(client: AsyncClient, admin_headers: dict) -> None:
    first = await create_category(client, admin_headers, "Garden Tools")

    response = await client.put(f"{CATEGORIES}/{first['id']}", json={"name": "Garden Tools"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["slug"] == "garden-tools"


async def test_racing_creations_of_one_slug_make_one_category(client: AsyncClient, admin_headers: dict) -> None:
    # Nothing checks the slug first: each loser's insert meets the unique constraint, which must make it a 409.
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


async def test_delete_removes_the_category(client: AsyncClient, admin_headers: dict) -> None:
    kept = await create_category(client, admin_headers, "Kept")
    category = await create_category(client, admin_headers, "Gone")

    response = await client.delete(f"{CATEGORIES}/{category['id']}", headers=admin_headers)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(CATEGORIES, headers=admin_headers)).json()["items"] == [kept]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("deleted", [True, False], ids=["deleted", "unknown"])
async def test_a_deleted_category_like_an_unknown_one_is_404(
    client: AsyncClient, admin_headers: dict, deleted: bool, method: str
) -> None:
    gone = await create_category(client, admin_headers, "Gone")
    assert (await client.delete(f"{CATEGORIES}/{gone['id']}", headers=admin_headers)).status_code == 204
    target = f"{CATEGORIES}/{gone['id'] if deleted else 999999}"
    body = {"name": "New"} if method == "put" else None

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


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize(("body", "loc"), INVALID_BODIES, ids=[str(body) for body, _ in INVALID_BODIES])
async def test_invalid_bodies_are_422_and_change_nothing(
    client: AsyncClient, admin_headers: dict, method: str, body: Any, loc: tuple[str, ...]
) -> None:
    category = await create_category(client, admin_headers, "Tools")
    before = await catalogue(client, admin_headers)
    url = CATEGORIES if method == "post" else f"{CATEGORIES}/{category['id']}"

    assert_invalid(await client.request(method, url, json=body, headers=admin_headers), *loc)
    assert await catalogue(client, admin_headers) == before


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "1.5", str(2**31)])
async def test_bad_ids_are_422(client: AsyncClient, user_headers: dict, bad_id: str) -> None:
    assert_invalid(await client.get(f"{CATEGORIES}/{bad_id}", headers=user_headers), "path", "id")


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    "params",
    [{"page": 0}, {"page": -1}, {"page": "x"}, {"size": 0}, {"size": 101}, {"size": "ten"}],
    ids=lambda params: "{}={}".format(*next(iter(params.items()))),
)
async def test_bad_pages_are_422(client: AsyncClient, user_headers: dict, params: dict[str, Any]) -> None:
    name = next(iter(params))
    assert_invalid(await client.get(CATEGORIES, params=params, headers=user_headers), "query", name)


@pytest.mark.parametrize("size", [1, 100])
async def test_the_page_size_bounds_themselves_are_allowed(client: AsyncClient, user_headers: dict, size: int) -> None:
    response = await client.get(CATEGORIES, params={"size": size}, headers=user_headers)
    assert response.status_code == 200
    assert response.json()["size"] == size


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST], ids=lambda role: role.value)
async def test_everyone_signed_in_may_read(client: AppClient, admin_headers: dict, role: Role) -> None:
    category = await create_category(client, admin_headers, "Tools")
    headers, _ = await signed_in(client, role)

    assert (await client.get(CATEGORIES, headers=headers)).json()["items"] == [category]
    assert (await client.get(f"{CATEGORIES}/{category['id']}", headers=headers)).json() == category


# The role is judged before any SQL runs; test_role_matrix asks every endpoint as every role on both backends.
@sqlite_only
@pytest.mark.parametrize("role", [Role.USER, Role.GUEST, None], ids=["user", "guest", "anonymous"])
@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("post", {"name": "Mine"}),
        ("post", {"name": ""}),  # the role is judged before the body
        ("put", {"name": "Mine"}),
        ("delete", None),
    ],
    ids=["create", "create-invalid", "replace", "delete"],
)
async def test_only_an_admin_may_write(
    client: AppClient, admin_headers: dict, method: str, body: Any, role: Role | None
) -> None:
    category = await create_category(client, admin_headers, "Tools")
    target = CATEGORIES if method == "post" else f"{CATEGORIES}/{category['id']}"
    headers = (await signed_in(client, role))[0] if role else {}
    before = await catalogue(client, admin_headers)

    response = await client.request(method, target, json=body, headers=headers)

    if role:
        assert_problem(response, 403, "insufficient_role")
    else:
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await catalogue(client, admin_headers) == before
