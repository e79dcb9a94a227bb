"""Accounts through the API: one's own profile, and the admin's list, view and control of everyone's."""

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from auth.roles import Role
from models import User
from tests.conftest import sqlite_only
from tests.helpers import bearer, login, register, signed_in

USERS = "/api/v1/users"
USER_FIELDS = {"id", "username", "email", "role", "is_active", "email_verified", "created_at"}


async def stored_user(client, user_id: int) -> tuple[str, bool]:
    async with client.app.state.database.sessionmaker() as session:
        user = await session.get(User, user_id)
        return user.role, user.is_active


async def test_me_is_the_signed_in_user(client):
    registered = await register(client)
    tokens = await login(client, registered["username"])
    response = await client.get(f"{USERS}/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    body = response.json()
    assert body == registered
    assert set(body) == USER_FIELDS
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None


async def test_admin_lists_users_by_ascending_id_in_pages(client, admin_headers):
    others = [await register(client) for _ in range(4)]
    first = await client.get(USERS, params={"size": 2}, headers=admin_headers)
    assert first.status_code == 200
    page = first.json()
    assert {name: page[name] for name in ("total", "page", "size", "pages")} == {
        "total": 5,
        "page": 1,
        "size": 2,
        "pages": 3,
    }
    everyone = page["items"]
    for number in (2, 3):
        everyone += (await client.get(USERS, params={"size": 2, "page": number}, headers=admin_headers)).json()["items"]
    ids = [user["id"] for user in everyone]
    assert ids == sorted(ids)
    assert ids[1:] == [user["id"] for user in others]
    assert all(set(user) == USER_FIELDS for user in everyone)
    past_the_end = await client.get(USERS, params={"size": 2, "page": 4}, headers=admin_headers)
    assert past_the_end.status_code == 200
    assert past_the_end.json()["items"] == []


@pytest.mark.parametrize(
    ("caller", "target", "status"),
    [
        ("user", "user", 200),  # oneself
        ("guest", "guest", 200),
        ("admin", "user", 200),  # an admin reads anyone
        ("user", "guest", 403),
        ("guest", "user", 403),
        ("user", "missing", 403),  # nor does a non-admin learn which ids exist
        ("admin", "missing", 404),
    ],
    ids=lambda value: str(value),
)
async def test_reading_one_user(client, admin_headers, caller, target, status):
    user_headers, user = await signed_in(client)
    guest_headers, guest = await signed_in(client, Role.GUEST)
    headers = {"user": user_headers, "guest": guest_headers, "admin": admin_headers}[caller]
    user_id = {"user": user, "guest": guest, "missing": {"id": 999_999}}[target]["id"]

    response = await client.get(f"{USERS}/{user_id}", headers=headers)

    assert response.status_code == status, response.text
    if status == 200:
        assert response.json() == {"user": user, "guest": guest}[target]
        assert set(response.json()) == USER_FIELDS
    else:
        assert response.headers["content-type"] == "application/problem+json"


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize("user_id", ["0", "-1", "abc", str(2**31)])
async def test_bad_user_ids_are_422(client, admin_headers, user_id):
    response = await client.get(f"{USERS}/{user_id}", headers=admin_headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][0] == "path"


async def test_admin_changes_role_and_active_flag(client, admin_headers):
    user = await register(client)

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        response = await client.patch(f"{USERS}/{user['id']}", json=body, headers=admin_headers)
        assert response.status_code == 200, (body, response.text)
        assert set(response.json()) == USER_FIELDS
        return response.json()

    assert (await patch({"role": "guest"}))["role"] == "guest"
    assert await stored_user(client, user["id"]) == ("guest", True)
    changed = await patch({"role": "admin", "is_active": False})
    assert (changed["role"], changed["is_active"]) == ("admin", False)
    assert await stored_user(client, user["id"]) == ("admin", False)
    unchanged = await patch({})
    assert (unchanged["role"], unchanged["is_active"]) == ("admin", False)
    assert (await patch({"is_active": True}))["is_active"] is True
    assert await stored_user(client, user["id"]) == ("admin", True)
    unknown = await client.patch(f"{USERS}/999999", json={"role": "guest"}, headers=admin_headers)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    "body",
    [
        {"role": None},
        {"is_active": None},
        {"role": "superuser"},
        {"role": "ADMIN"},
        {"is_active": "false"},
        {"is_active": 0},
        {"username": "renamed"},
        {"email": "new@example.com"},
        {"password": "new-password-1"},
        {"hashed_password": "$2b$04$" + "x" * 53},
        {"id": 1},
        {"role": "admin", "created_at": "2020-01-01T00:00:00Z"},
    ],
    ids=lambda body: ",".join(f"{name}={value!r:.12}" for name, value in body.items()),
)
async def test_invalid_patches_are_422_and_change_nothing(client, admin_headers, body):
    user = await register(client)

    response = await client.patch(f"{USERS}/{user['id']}", json=body, headers=admin_headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][0] == "body"
    async with client.app.state.database.sessionmaker() as session:
        stored = (await session.scalars(select(User).where(User.id == user["id"]))).one()
        assert (stored.username, stored.email, stored.role, stored.is_active) == (
            user["username"],
            user["email"],
            "user",
            True,
        )
    assert (await login(client, user["username"]))["access_token"]


@pytest.mark.parametrize(
    "body",
    [{"role": "user"}, {"role": "guest"}, {"is_active": False}, {"role": "admin", "is_active": False}],
    ids=["user", "guest", "disabled", "admin-disabled"],
)
async def test_admin_cannot_demote_or_disable_themself(client, body):
    headers, admin = await signed_in(client, Role.ADMIN)

    response = await client.patch(f"{USERS}/{admin['id']}", json=body, headers=headers)

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "self_modification"
    assert await stored_user(client, admin["id"]) == ("admin", True)


async def test_admin_may_make_changes_that_leave_them_an_active_admin(client):
    headers, admin = await signed_in(client, Role.ADMIN)

    harmless = await client.patch(f"{USERS}/{admin['id']}", json={"role": "admin", "is_active": True}, headers=headers)
    assert harmless.status_code == 200
    assert (await client.get(USERS, headers=headers)).status_code == 200
