"""Domain events: every change of state records exactly one, in its own commit, and the feed lists them all.

Each test takes the feed's end before the request it is about (`FeedReader.start`) and reads what came after, so
the registrations that set up its callers do not count.
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from auth.roles import Role
from auth.security import hash_account_token, new_account_token
from database.connection import write_transaction
from models import AccountToken, Event, TokenPurpose, User
from services import orders as orders_service
from services import products as products_service
from services.products import ProductData
from tests.conftest import sqlite_only
from tests.helpers import (
    PASSWORD,
    AppClient,
    assert_invalid,
    assert_problem,
    bearer,
    create_category,
    create_product,
    login,
    place_order,
    register,
    signed_in,
    unique,
)

FEED = "/api/v1/events"
CHANGED = "shop.order.status_changed"
CLOUD_EVENT_MEMBERS = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "actor", "data"}


class FeedReader:
    """Follows the feed's next_cursor, as a consumer does."""

    def __init__(self, client: AppClient, headers: dict[str, str], **filters: str) -> None:
        self.client = client
        self.headers = headers
        self.filters = filters
        self.cursor = ""

    async def page(self, size: int = 100) -> list[dict[str, Any]]:
        response = await self.client.get(
            FEED, params={**self.filters, "cursor": self.cursor, "size": size}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["next_cursor"]
        assert (body["total"], body["page"], body["pages"]) == (None, None, None)
        self.cursor = body["next_cursor"]
        return body["items"]

    async def new(self) -> list[dict[str, Any]]:
        """Every event committed since the last read."""
        events: list[dict[str, Any]] = []
        while batch := await self.page():
            events.extend(batch)
        return events

    @classmethod
    async def start(cls, client: AppClient, headers: dict[str, str], **filters: str) -> "FeedReader":
        """A reader positioned after every event so far."""
        reader = cls(client, headers, **filters)
        await reader.new()
        return reader


async def the_one_event(reader: FeedReader) -> dict[str, Any]:
    events = await reader.new()
    assert len(events) == 1, events
    return events[0]


def assert_envelope(event: dict[str, Any], *, type: str, subject: str, actor: str, source: str = "/shop") -> None:
    assert event.keys() == CLOUD_EVENT_MEMBERS
    assert event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json"
    assert (event["type"], event["subject"], event["actor"], event["source"]) == (type, subject, actor, source)
    assert datetime.fromisoformat(event["time"]).utcoffset() == timedelta(0)
    assert event["time"].endswith("+00:00")
    assert abs(datetime.now(UTC) - datetime.fromisoformat(event["time"])) < timedelta(minutes=5)


async def assert_no_secrets(client: AppClient, event: dict[str, Any], *secrets: str) -> None:
    """Neither password hashes nor any of `secrets` (tokens, passwords) appear anywhere in the event."""
    text = json.dumps(event)
    async with client.app.state.database.sessionmaker() as session:
        hashes = [row for row in (await session.scalars(select(User.hashed_password))).all() if row]
    for secret in (*hashes, *secrets, "hashed_password", "$2b$"):
        assert secret not in text


async def current(client: AppClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def stored_events(client: AppClient) -> int:
    async with client.app.state.database.sessionmaker() as session:
        return len((await session.scalars(select(Event.id))).all())


# Users


async def test_registration_is_the_new_users_own_event(client, admin_headers):
    reader = await FeedReader.start(client, admin_headers)

    user = await register(client, password="a-secret-password")

    event = await the_one_event(reader)
    assert_envelope(event, type="shop.user.registered", subject=f"users/{user['id']}", actor=f"users/{user['id']}")
    assert event["data"] == user == await current(client, f"/api/v1/users/{user['id']}", admin_headers)
    await assert_no_secrets(client, event, "a-secret-password")


async def test_an_account_made_by_an_admin_is_the_admins_event(client):
    admin_headers, admin = await signed_in(client, Role.ADMIN)
    reader = await FeedReader.start(client, admin_headers)
    name = unique("made")

    response = await client.post(
        "/api/v1/users",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD, "role": "guest"},
        headers=admin_headers,
    )

    assert response.status_code == 201
    made = response.json()
    event = await the_one_event(reader)
    assert_envelope(event, type="shop.user.registered", subject=f"users/{made['id']}", actor=f"users/{admin['id']}")
    assert event["data"] == made == await current(client, f"/api/v1/users/{made['id']}", admin_headers)
    await assert_no_secrets(client, event, PASSWORD)


async def test_the_first_admin_from_the_environment_is_registered_by_itself(app_client):
    async with app_client(
        admin_username="boss", admin_email="boss@example.com", admin_password="boss-password-1", event_source="/test"
    ) as client:
        headers = bearer((await login(client, "boss", "boss-password-1"))["access_token"])
        events = await FeedReader(client, headers).new()
        me = await current(client, "/api/v1/users/me", headers)

    assert len(events) == 1
    assert_envelope(
        events[0], type="shop.user.registered", subject=f"users/{me['id']}", actor=f"users/{me['id']}", source="/test"
    )
    assert events[0]["data"] == me


@pytest.mark.parametrize("change", [{"role": "guest"}, {"is_active": False}])
async def test_an_admin_changing_a_user_records_an_update(client, admin_headers, change):
    _, admin = await signed_in(client, Role.ADMIN)
    user = await register(client)
    reader = await FeedReader.start(client, admin_headers)

    response = await client.patch(f"/api/v1/users/{user['id']}", json=change, headers=admin_headers)

    assert response.status_code == 200
    event = await the_one_event(reader)
    actor = await current(client, "/api/v1/users/me", admin_headers)
    assert_envelope(event, type="shop.user.updated", subject=f"users/{user['id']}", actor=f"users/{actor['id']}")
    assert event["data"] == response.json() == await current(client, f"/api/v1/users/{user['id']}", admin_headers)
    assert admin["id"] != user["id"]


async def test_a_profile_change_is_the_users_own_update(client, admin_headers):
    headers, user = await signed_in(client)
    reader = await FeedReader.start(client, admin_headers)
    name = unique("renamed")

    response = await client.patch(
        "/api/v1/users/me", json={"username": name, "email": f"{name}@example.com"}, headers=headers
    )

    assert response.status_code == 200
    event = await the_one_event(reader)
    assert_envelope(event, type="shop.user.updated", subject=f"users/{user['id']}", actor=f"users/{user['id']}")
    assert event["data"] == response.json() == await current(client, "/api/v1/users/me", headers)
    assert event["data"]["username"] == name
    assert event["data"]["email_verified"] is False


async def test_verifying_the_address_records_an_update_without_the_token(client, admin_headers):
    user = await register(client)
    token = new_account_token()
    async with client.app.state.database.sessionmaker() as session, write_transaction(session):
        session.add(
            AccountToken(
                user_id=user["id"],
                purpose=TokenPurpose.VERIFY_EMAIL,
                token_hash=hash_account_token(token),
                email=user["email"],
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    reader = await FeedReader.start(client, admin_headers)

    response = await client.post("/api/v1/auth/verify-email", json={"token": token})

    assert response.status_code == 204
    event = await the_one_event(reader)
    assert_envelope(event, type="shop.user.updated", subject=f"users/{user['id']}", actor=f"users/{user['id']}")
    assert event["data"] == {**user, "email_verified": True}
    assert event["data"] == await current(client, f"/api/v1/users/{user['id']}", admin_headers)
    await assert_no_secrets(client, event, token, hash_account_token(token))


async def test_erasure_records_a_deletion_carrying_only_the_id(client, admin_headers):
    headers, user = await signed_in(client)
    reader = await FeedReader.start(client, admin_headers)

    response = await client.request("DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=headers)

    assert response.status_code == 204
    event = await the_one_event(reader)
    assert_envelope(event, type="shop.user.deleted", subject=f"users/{user['id']}", actor=f"users/{user['id']}")
    assert event["data"] == {"id": user["id"]}


async def test_erasure_leaves_nothing_personal_in_the_accounts_earlier_events(client, admin_headers):
    headers, user = await signed_in(client)
    renamed = await client.patch("/api/v1/users/me", json={"username": unique("renamed")}, headers=headers)
    assert renamed.status_code == 200

    erased = await client.request("DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=headers)

    assert erased.status_code == 204
    feed = await client.get(f"/api/v1/events?subject=users/{user['id']}", headers=admin_headers)
    events = feed.json()["items"]
    assert [event["type"] for event in events] == ["shop.user.registered", "shop.user.updated", "shop.user.deleted"]
    assert [event["data"] for event in events] == [{"id": user["id"]}] * 3


async def test_password_and_session_changes_record_nothing(client, admin_headers):
    headers, user = await signed_in(client)
    reader = await FeedReader.start(client, admin_headers)

    changed = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "another-password-2"},
        headers=headers,
    )
    assert changed.status_code == 200
    tokens = await login(client, user["username"], "another-password-2")
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    ended = await client.delete("/api/v1/users/me/sessions", headers=bearer(refreshed.json()["access_token"]))
    assert ended.status_code == 204

    assert await reader.new() == []


# The catalogue


async def test_category_lifecycle_records_created_updated_deleted(client):
    admin_headers, admin = await signed_in(client, Role.ADMIN)
    reader = await FeedReader.start(client, admin_headers)
    actor = f"users/{admin['id']}"

    category = await create_category(client, admin_headers, "Garden Tools")
    created = await the_one_event(reader)
    assert_envelope(created, type="shop.category.created", subject=f"categories/{category['id']}", actor=actor)
    assert created["data"] == category == await current(client, f"/api/v1/categories/{category['id']}", admin_headers)

    replaced = await client.put(
        f"/api/v1/categories/{category['id']}", json={"name": "Garden Tools & More"}, headers=admin_headers
    )
    assert replaced.status_code == 200
    updated = await the_one_event(reader)
    assert_envelope(updated, type="shop.category.updated", subject=f"categories/{category['id']}", actor=actor)
    assert updated["data"] == replaced.json()
    assert updated["data"] == await current(client, f"/api/v1/categories/{category['id']}", admin_headers)

    deleted = await client.delete(f"/api/v1/categories/{category['id']}", headers=admin_headers)
    assert deleted.status_code == 204
    gone = await the_one_event(reader)
    assert_envelope(gone, type="shop.category.deleted", subject=f"categories/{category['id']}", actor=actor)
    assert gone["data"] == {"id": category["id"]}


async def test_product_lifecycle_records_created_updated_deleted(client):
    admin_headers, admin = await signed_in(client, Role.ADMIN)
    category = await create_category(client, admin_headers)
    reader = await FeedReader.start(client, admin_headers)
    actor = f"users/{admin['id']}"

    product = await create_product(
        client,
        admin_headers,
        price="19.9",
        stock=5,
        category_id=category["id"],
        description="<b>bold</b><script>x</script>",
    )
    created = await the_one_event(reader)
    path = f"/api/v1/products/{product['id']}"
    assert_envelope(created, type="shop.product.created", subject=f"products/{product['id']}", actor=actor)
    assert created["data"] == product == await current(client, path, admin_headers)
    assert created["data"]["price"] == "19.90"

    body = {"name": "Rake", "price": 21, "stock": 7, "category_id": None, "description": ""}
    replaced = await client.put(path, json=body, headers=admin_headers)
    assert replaced.status_code == 200
    updated = await the_one_event(reader)
    assert_envelope(updated, type="shop.product.updated", subject=f"products/{product['id']}", actor=actor)
    assert updated["data"] == replaced.json() == await current(client, path, admin_headers)
    assert updated["data"]["updated_at"] > created["data"]["updated_at"]

    # The same representation again changes nothing a client can see: no event.
    again = await client.put(path, json=body, headers=admin_headers)
    assert again.status_code == 200
    assert again.headers["ETag"] == replaced.headers["ETag"]
    assert await reader.new() == []

    deleted = await client.delete(path, headers=admin_headers)
    assert deleted.status_code == 204
    gone = await the_one_event(reader)
    assert_envelope(gone, type="shop.product.deleted", subject=f"products/{product['id']}", actor=actor)
    assert gone["data"] == {"id": product["id"]}


# Orders


async def test_an_order_is_one_created_event_whatever_its_lines(client, admin_headers):
    products = [(await create_product(client, admin_headers, price=f"{n}.25", stock=9))["id"] for n in (1, 2, 3)]
    headers, user = await signed_in(client)
    reader = await FeedReader.start(client, admin_headers)

    response = await place_order(client, headers, [(products[2], 1), (products[0], 2), (products[1], 3)])

    assert response.status_code == 201
    order = response.json()
    event = await the_one_event(reader)
    assert_envelope(event, type="shop.order.created", subject=f"orders/{order['id']}", actor=f"users/{user['id']}")
    assert event["data"] == order == await current(client, f"/api/v1/orders/{order['id']}", headers)
    assert event["data"]["total"] == "12.50"


async def test_status_changes_carry_the_previous_status(client):
    admin_headers, admin = await signed_in(client, Role.ADMIN)
    product = await create_product(client, admin_headers, stock=5)
    headers, _ = await signed_in(client)
    order = (await place_order(client, headers, [(product["id"], 2)])).json()
    reader = await FeedReader.start(client, admin_headers)
    path = f"/api/v1/orders/{order['id']}"

    paid = await client.patch(f"{path}/status", json={"status": "paid"}, headers=admin_headers)
    assert paid.status_code == 200
    cancelled = await client.post(f"{path}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200

    events = await reader.new()
    assert [event["type"] for event in events] == ["shop.order.status_changed"] * 2
    for event in events:
        assert_envelope(
            event, type="shop.order.status_changed", subject=f"orders/{order['id']}", actor=f"users/{admin['id']}"
        )
    assert events[0]["data"] == {**paid.json(), "previous_status": "pending"}
    assert events[1]["data"] == {**cancelled.json(), "previous_status": "paid"}
    assert events[1]["data"] == {**await current(client, path, admin_headers), "previous_status": "paid"}
    assert events[1]["data"]["expires_at"] is None


async def test_an_owners_cancellation_is_the_owners_event(client, admin_headers):
    product = await create_product(client, admin_headers)
    headers, user = await signed_in(client)
    order = (await place_order(client, headers, [(product["id"], 1)])).json()
    reader = await FeedReader.start(client, admin_headers)

    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)

    assert cancelled.status_code == 200
    event = await the_one_event(reader)
    assert_envelope(
        event, type="shop.order.status_changed", subject=f"orders/{order['id']}", actor=f"users/{user['id']}"
    )
    assert event["data"] == {**cancelled.json(), "previous_status": "pending"}


async def test_an_expiry_is_the_systems_event_one_per_order(client, admin_headers):
    product = await create_product(client, admin_headers, stock=10)
    headers, _ = await signed_in(client)
    orders = [(await place_order(client, headers, [(product["id"], 1)])).json() for _ in range(3)]
    reader = await FeedReader.start(client, admin_headers)

    async with client.app.state.database.sessionmaker() as session:
        later = datetime.now(UTC) + timedelta(days=1)
        assert await orders_service.expire_orders(session=session, now=later, batch_size=2) == 3

    events = await reader.new()
    assert sorted(event["subject"] for event in events) == sorted(f"orders/{order['id']}" for order in orders)
    for event in events:
        assert_envelope(event, type="shop.order.status_changed", subject=event["subject"], actor="system")
        now = await current(client, f"/api/v1/{event['subject']}", admin_headers)
        assert event["data"] == {**now, "previous_status": "pending"}
        assert now["status"] == "cancelled"


# What records nothing


async def test_failed_requests_record_nothing(client, admin_headers, guest_headers):
    product = await create_product(client, admin_headers, stock=1)
    headers, _ = await signed_in(client)
    reader = await FeedReader.start(client, admin_headers)
    path = f"/api/v1/products/{product['id']}"

    assert_problem(await place_order(client, headers, [(product["id"], 2)]), 409, "insufficient_stock")
    body = {"name": "Changed", "price": "1.00", "stock": 1}
    assert_problem(await client.put(path, json=body, headers={**admin_headers, "If-Match": '"99"'}), 412)
    assert_invalid(await client.put(path, json={**body, "price": "0"}, headers=admin_headers), "body", "price")
    assert_problem(await client.post("/api/v1/products", json=body, headers=guest_headers), 403)
    assert_problem(await client.post("/api/v1/orders/123456/cancel", headers=headers), 404)
    assert await reader.new() == []

    taken = await create_category(client, admin_headers)
    assert len(await reader.new()) == 1
    clash = {"name": "Other", "slug": taken["slug"]}
    assert_problem(await client.post("/api/v1/categories", json=clash, headers=admin_headers), 409, "slug_taken")
    assert await reader.new() == []


async def test_an_idempotent_replay_records_nothing(client, admin_headers):
    product = await create_product(client, admin_headers)
    headers, _ = await signed_in(client)
    first = await place_order(client, {**headers, "Idempotency-Key": "k-1"}, [(product["id"], 1)])
    assert first.status_code == 201
    reader = await FeedReader.start(client, admin_headers)

    replay = await place_order(client, {**headers, "Idempotency-Key": "k-1"}, [(product["id"], 1)])

    assert replay.headers["Idempotency-Replayed"] == "true"
    assert await reader.new() == []


async def test_a_change_rolled_back_leaves_no_event(client, admin_headers, monkeypatch):
    """The event is staged with the change; an exception later in the same unit of work takes both away."""
    original = products_service.record_change

    def record_then_fail(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        raise RuntimeError("the unit of work fails after its change and its event")

    monkeypatch.setattr(products_service, "record_change", record_then_fail)
    before = await stored_events(client)
    async with client.app.state.database.sessionmaker() as session:
        admin = (await session.scalars(select(User).where(User.role == Role.ADMIN))).first()
        data = ProductData(name="Doomed", description="", price=1, stock=1, category_id=None)
        with pytest.raises(RuntimeError):
            await products_service.create_product(session=session, actor=admin, data=data)

    assert await stored_events(client) == before
    assert (await current(client, "/api/v1/products", admin_headers))["items"] == []


# The feed


async def test_the_feed_is_for_admins(client, user_headers):
    assert_problem(await client.get(FEED), 401)
    assert_problem(await client.get(FEED, headers=user_headers), 403, "insufficient_role")


@sqlite_only
@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"page": "1"}, ("query", "page")),
        ({"page": "1", "cursor": ""}, ("query", "page")),
        ({"type": "shop.order.*"}, ("query", "type")),
        ({"type": "shop..order"}, ("query", "type")),
        ({"type": "Shop.Order"}, ("query", "type")),
        ({"type": "x" * 65}, ("query", "type")),
        ({"subject": "orders/"}, ("query", "subject")),
        ({"subject": "orders/01"}, ("query", "subject")),
        ({"subject": "orders/1 "}, ("query", "subject")),
        ({"size": "0"}, ("query", "size")),
        ({"size": "101"}, ("query", "size")),
    ],
)
async def test_the_feed_refuses_bad_queries(client, admin_headers, params, loc):
    assert_invalid(await client.get(FEED, params=params, headers=admin_headers), *loc)


async def test_filters_by_type_prefix_and_subject(client, admin_headers):
    category = await create_category(client, admin_headers)
    product = await create_product(client, admin_headers, category_id=category["id"])
    headers, _ = await signed_in(client)
    order = (await place_order(client, headers, [(product["id"], 1)])).json()
    await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)

    async def types(**filters: str) -> list[tuple[str, str]]:
        return [(event["type"], event["subject"]) for event in await FeedReader(client, admin_headers, **filters).new()]

    assert await types(type="shop.order.") == [
        ("shop.order.created", f"orders/{order['id']}"),
        ("shop.order.status_changed", f"orders/{order['id']}"),
    ]
    assert await types(type="shop.order.created") == [("shop.order.created", f"orders/{order['id']}")]
    assert await types(type="shop.order") == []
    assert await types(type="shop.") == await types()
    assert await types(type="shop.category.") == [("shop.category.created", f"categories/{category['id']}")]
    assert await types(subject=f"products/{product['id']}") == [("shop.product.created", f"products/{product['id']}")]
    assert await types(type="shop.order.", subject=f"orders/{order['id'] + 1}") == []
    # `_` in a prefix is a character, not LIKE's wildcard.
    assert await types(type="shop.order_") == []


async def test_next_cursor_is_never_null_and_goes_on_with_later_events(client, admin_headers):
    response = await client.get(FEED, params={"type": "shop.product."}, headers=admin_headers)
    body = response.json()
    assert body["items"] == []
    assert body["next_cursor"]
    empty_cursor = body["next_cursor"]

    products = [await create_product(client, admin_headers) for _ in range(3)]
    pages = []
    cursor = empty_cursor
    for _ in range(4):
        body = (
            await client.get(FEED, params={"type": "shop.product.", "cursor": cursor, "size": 2}, headers=admin_headers)
        ).json()
        pages.append([event["data"]["id"] for event in body["items"]])
        assert body["next_cursor"]
        cursor = body["next_cursor"]
    assert pages == [[products[0]["id"], products[1]["id"]], [products[2]["id"]], [], []]

    later = await create_product(client, admin_headers)
    body = (await client.get(FEED, params={"type": "shop.product.", "cursor": cursor}, headers=admin_headers)).json()
    assert [event["data"] for event in body["items"]] == [later]
    # Absent and empty cursors both start at the first event.
    first = (await client.get(FEED, headers=admin_headers)).json()["items"]
    assert first == (await client.get(FEED, params={"cursor": ""}, headers=admin_headers)).json()["items"]
    assert first[0]["type"] == "shop.user.registered"


async def test_a_cursor_is_bound_to_its_filters_and_cannot_be_altered(client, admin_headers):
    for _ in range(2):
        await create_product(client, admin_headers)
    body = (await client.get(FEED, params={"type": "shop.product.", "size": 1}, headers=admin_headers)).json()
    cursor = body["next_cursor"]

    assert_problem(await client.get(FEED, params={"cursor": cursor}, headers=admin_headers), 400, "invalid_cursor")
    other = {"type": "shop.user.", "cursor": cursor}
    assert_problem(await client.get(FEED, params=other, headers=admin_headers), 400, "invalid_cursor")
    with_subject = {"type": "shop.product.", "subject": "products/1", "cursor": cursor}
    assert_problem(await client.get(FEED, params=with_subject, headers=admin_headers), 400, "invalid_cursor")
    payload, mac = cursor.split(".")
    altered = {"type": "shop.product.", "cursor": f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}"}
    assert_problem(await client.get(FEED, params=altered, headers=admin_headers), 400, "invalid_cursor")
    products = await client.get("/api/v1/products", params={"cursor": "", "size": 1}, headers=admin_headers)
    of_products = {"type": "shop.product.", "cursor": products.json()["next_cursor"]}
    assert_problem(await client.get(FEED, params=of_products, headers=admin_headers), 400, "invalid_cursor")
    good = await client.get(FEED, params={"type": "shop.product.", "cursor": cursor}, headers=admin_headers)
    assert good.status_code == 200
    assert len(good.json()["items"]) == 1
