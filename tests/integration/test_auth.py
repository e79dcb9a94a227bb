"""Registration, login, refresh-token rotation, logout and per-request account checks, on each backend."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select, update

from auth.jwt import create_access_token
from auth.roles import Role
from auth.security import hash_refresh_token
from infrastructure.revocations import revocation_key
from models import RefreshToken, RefreshTokenFamily, RevokedAccessToken, User
from services import maintenance
from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, bearer, login, register, set_role, unique

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
PROBLEM = "application/problem+json"


async def scalar(client, statement) -> Any:
    async with client.app.state.database.sessionmaker() as session:
        return (await session.execute(statement)).scalar()


async def user_count(client) -> int:
    return await scalar(client, select(func.count()).select_from(User))


async def set_active(client, user_id: int, active: bool) -> None:
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(update(User).where(User.id == user_id).values(is_active=active))
        await session.commit()


def assert_unauthorized(response, code: str | None = None, case: object = None) -> None:
    assert response.status_code == 401, (case, response.text)
    assert response.headers["WWW-Authenticate"] == "Bearer", case
    assert response.headers["content-type"] == PROBLEM, case
    body = response.json()
    assert body["status"] == 401, case
    assert body["request_id"] == response.headers["X-Request-ID"], case
    if code is not None:
        assert body["code"] == code, (case, body)


async def refresh(client, token: str):
    return await client.post(REFRESH, json={"refresh_token": token})


async def refreshed(client, token: str) -> dict[str, Any]:
    response = await refresh(client, token)
    assert response.status_code == 200, response.text
    return response.json()


async def me_status(client, access_token: str) -> int:
    return (await client.get(ME, headers=bearer(access_token))).status_code


# Registration


async def test_register_creates_a_user_and_never_returns_the_hash(client):
    response = await client.post(
        REGISTER, json={"username": "Alice_1.x-y", "email": "Alice@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "username", "email", "role", "is_active", "email_verified", "created_at"}
    assert response.headers["Location"] == f"/api/v1/users/{body['id']}"
    assert body["username"] == "Alice_1.x-y"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert body["email_verified"] is False
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None
    assert PASSWORD not in response.text
    stored = await scalar(client, select(User.hashed_password).where(User.id == body["id"]))
    assert stored.startswith("$2b$04$")  # bcrypt at the configured cost, never the password itself
    tokens = await login(client, "alice_1.x-y")
    located = await client.get(response.headers["Location"], headers=bearer(tokens["access_token"]))
    assert located.json() == body


@pytest.mark.parametrize(
    ("username", "email", "code"),
    [
        ("ALICE", "other@example.com", "username_taken"),
        ("bob", "ALICE@example.COM", "email_taken"),
        ("alice", "alice@example.com", "username_taken"),
    ],
    ids=["username", "email", "both"],
)
async def test_duplicate_username_or_email_is_409_case_insensitively(client, username, email, code):
    await client.post(REGISTER, json={"username": "alice", "email": "alice@example.com", "password": PASSWORD})

    response = await client.post(REGISTER, json={"username": username, "email": email, "password": PASSWORD})

    assert response.status_code == 409, response.text
    assert response.json()["code"] == code
    assert await user_count(client) == 1


VALID_REGISTRATION = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
INVALID_REGISTRATIONS = [
    ("username", "ab"),
    ("username", "a" * 33),
    ("username", "with space"),
    ("username", "slash/name"),
    ("username", "émile"),
    ("username", "<script>"),
    ("username", ""),
    ("username", 123),
    ("email", "not-an-address"),
    ("email", "carol@"),
    ("email", "@example.com"),
    ("email", ""),
    ("password", "seven77"),  # 7 bytes
    ("password", "ab€"),  # 5 bytes
    ("password", "€" * 24 + "a"),  # 73 bytes in 25 characters
    ("password", "a" * 73),
    ("password", 12345678),
]


REGISTRATION_CASES = [*INVALID_REGISTRATIONS, *[(field, ...) for field in VALID_REGISTRATION]]


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    ("field", "value"),
    REGISTRATION_CASES,
    ids=[f"{field}-missing" if value is ... else f"{field}={value!r:.20}" for field, value in REGISTRATION_CASES],
)
async def test_every_registration_rule_is_enforced(client, field, value):
    body = {**VALID_REGISTRATION, field: value}
    if value is ...:
        del body[field]

    response = await client.post(REGISTER, json=body)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [issue["loc"][:2] for issue in problem["errors"]] == [["body", field]]
    assert await user_count(client) == 0


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("abc", "eight888", id="shortest-username-8-byte-password"),
        pytest.param("a" * 32, "a" * 72, id="longest-username-72-byte-password"),
        pytest.param("x.y_z-1", "é" * 4, id="8-bytes-in-4-characters"),
        pytest.param("multi", "€" * 24, id="72-bytes-in-24-characters"),
    ],
)
async def test_boundary_registrations_are_accepted_and_can_log_in(client, username, password):
    await register(client, username=username, password=password)
    await login(client, username, password)
    # A longer password that shares the first 72 bytes must not match: nothing is truncated.
    response = await client.post(LOGIN, json={"username": username, "password": password + "x"})
    assert_unauthorized(response, "invalid_credentials")


# Login


@pytest.mark.parametrize(
    ("send", "name", "upper"),
    [("json", "username", False), ("json", "email", True), ("data", "username", True), ("data", "email", False)],
    ids=["json-username", "json-email-upper-case", "form-username-upper-case", "form-email"],
)
async def test_login_with_json_or_oauth2_form_by_username_or_email(client, send, name, upper):
    user = await register(client)
    settings = client.app.state.settings
    fields = {"username": user[name].upper() if upper else user[name], "password": PASSWORD}
    if send == "data":
        fields["grant_type"] = "password"  # what the docs' Authorize button sends

    response = await client.post(LOGIN, **{send: fields})

    assert response.status_code == 200, response.text
    tokens = response.json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    claims = jwt.decode(tokens["access_token"], settings.jwt_secret, algorithms=[settings.jwt_algorithm])
    assert claims["sub"] == str(user["id"])
    assert claims["role"] == "user"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    me = await client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.json()["id"] == user["id"]
    # Only the hash of the refresh token is stored.
    stored = await scalar(
        client, select(func.count()).where(RefreshToken.token_hash == hash_refresh_token(tokens["refresh_token"]))
    )
    assert stored == 1


def without_request_id(response) -> dict[str, Any]:
    return {name: value for name, value in response.json().items() if name != "request_id"}


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
async def test_unknown_user_and_wrong_password_get_the_same_401(client, form):
    user = await register(client)
    send = "data" if form else "json"
    wrong_password = await client.post(LOGIN, **{send: {"username": user["username"], "password": "wrong-password"}})
    unknown_user = await client.post(LOGIN, **{send: {"username": "nobody-here", "password": PASSWORD}})
    for response in (wrong_password, unknown_user):
        assert_unauthorized(response, "invalid_credentials")
    assert without_request_id(wrong_password) == without_request_id(unknown_user)
    assert wrong_password.headers["content-length"] == unknown_user.headers["content-length"]


async def test_disabled_account_gets_403_only_with_the_right_password(client):
    user = await register(client)
    await set_active(client, user["id"], False)
    right = await client.post(LOGIN, json={"username": user["username"], "password": PASSWORD})
    assert right.status_code == 403
    assert right.json()["code"] == "account_disabled"
    # A wrong password tells nothing about the account's state.
    wrong = await client.post(LOGIN, json={"username": user["username"], "password": "wrong-password"})
    assert_unauthorized(wrong, "invalid_credentials")
    assert await scalar(client, select(func.count()).select_from(RefreshToken)) == 0


@sqlite_only  # validation does not depend on the database
@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        pytest.param({"json": {"username": "someone"}}, 422, id="no-password"),
        pytest.param({"json": {"username": "someone", "password": PASSWORD, "role": "admin"}}, 422, id="extra-field"),
        pytest.param({"json": {"username": "", "password": PASSWORD}}, 422, id="empty-username"),
        pytest.param({"data": {"username": "someone"}}, 422, id="form-no-password"),
        pytest.param({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, id="bad-json"),
        pytest.param({"content": b"username=x", "headers": {"Content-Type": "text/plain"}}, 415, id="text-plain"),
    ],
)
async def test_malformed_login_requests_are_refused(client, request_kwargs, status):
    response = await client.post(LOGIN, **request_kwargs)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM


# Refresh tokens


async def test_refresh_rotates_the_pair(client):
    user = await register(client)
    first = await login(client, user["username"])
    second = await refreshed(client, first["refresh_token"])
    third = await refreshed(client, second["refresh_token"])
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert second["access_token"] != first["access_token"]
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == 900
    assert await me_status(client, third["access_token"]) == 200


async def test_reused_refresh_token_revokes_its_whole_family(client):
    user = await register(client)
    first = await login(client, user["username"])
    other_family = await login(client, user["username"])
    second = await refreshed(client, first["refresh_token"])

    assert_unauthorized(await refresh(client, first["refresh_token"]), "invalid_token")
    # Whoever replayed the old token might hold the new one too: the newest sibling is dead as well.
    assert_unauthorized(await refresh(client, second["refresh_token"]))
    assert_unauthorized(await refresh(client, first["refresh_token"]))
    # Another login of the same user is another family and keeps working.
    await refreshed(client, other_family["refresh_token"])


async def test_refresh_refuses_anything_but_a_live_refresh_token(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    assert (await refresh(client, "")).status_code == 422
    assert_unauthorized(await refresh(client, tokens["access_token"]), "invalid_token", case="access token")
    assert_unauthorized(await refresh(client, "x" * 43), "invalid_token", case="unknown")
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    assert_unauthorized(await refresh(client, tokens["refresh_token"]), "invalid_token", case="expired")


async def test_refresh_of_a_disabled_account_is_403_and_ends_the_family(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    await set_active(client, user["id"], False)
    response = await refresh(client, tokens["refresh_token"])
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"
    await set_active(client, user["id"], True)
    assert_unauthorized(await refresh(client, tokens["refresh_token"]))


async def test_refreshed_access_token_carries_the_current_role(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    await set_role(client, user["id"], Role.GUEST)
    pair = await refreshed(client, tokens["refresh_token"])
    settings = client.app.state.settings
    assert jwt.decode(pair["access_token"], settings.jwt_secret, algorithms=["HS256"])["role"] == "guest"


# Logout


async def assert_revocation_stored(client, backend, access_token: str) -> None:
    """Redis holds revocations when configured (until the token would expire anyway), else the database."""
    settings = client.app.state.settings
    claims = jwt.decode(access_token, settings.jwt_secret, algorithms=["HS256"])
    rows = await scalar(client, select(func.count()).select_from(RevokedAccessToken))
    if backend.redis_url:
        ttl = await client.app.state.redis.ttl(revocation_key(claims["jti"]))
        assert 0 < ttl <= settings.access_token_ttl_seconds + 1
        assert rows == 0
    else:
        stored = await scalar(client, select(RevokedAccessToken.expires_at))
        assert rows == 1
        assert int(stored.timestamp()) == claims["exp"]


async def test_logout_revokes_the_access_token_and_the_named_family(client, backend, app_client):
    user = await register(client)
    first = await login(client, user["username"])
    other_session = await login(client, user["username"])
    second = await refreshed(client, first["refresh_token"])

    # The named token was already used: its family still ends.
    response = await client.post(
        LOGOUT, json={"refresh_token": first["refresh_token"]}, headers=bearer(second["access_token"])
    )
    assert response.status_code == 204
    assert response.content == b""

    assert_unauthorized(await client.get(ME, headers=bearer(second["access_token"])), "token_revoked")
    assert_unauthorized(await refresh(client, second["refresh_token"]))
    # Only that access token and that family: another session of the same user is untouched.
    assert await me_status(client, other_session["access_token"]) == 200
    await refreshed(client, other_session["refresh_token"])
    await assert_revocation_stored(client, backend, second["access_token"])
    # Another process sharing the database (and Redis) refuses the token too.
    async with app_client() as other_process:
        assert_unauthorized(await other_process.get(ME, headers=bearer(second["access_token"])), "token_revoked")


async def test_logout_without_a_body_keeps_the_refresh_family(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    response = await client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert await me_status(client, tokens["access_token"]) == 401
    await refreshed(client, tokens["refresh_token"])


@pytest.mark.parametrize("named", ["unknown", "another-users", "own-unused", "own-used", "none"])
async def test_logout_answers_204_whatever_refresh_token_is_named(client, named):
    victim = await login(client, (await register(client))["username"])
    user = await register(client)
    tokens = await login(client, user["username"])
    own_used = tokens["refresh_token"]
    if named == "own-used":
        tokens = {**await refreshed(client, own_used), "access_token": tokens["access_token"]}
    refresh_token = {
        "unknown": "x" * 43,
        "another-users": victim["refresh_token"],
        "own-unused": tokens["refresh_token"],
        "own-used": own_used,
    }.get(named)
    body = {} if refresh_token is None else {"refresh_token": refresh_token}

    response = await client.post(LOGOUT, json=body, headers=bearer(tokens["access_token"]))

    assert response.status_code == 204
    assert await me_status(client, tokens["access_token"]) == 401
    # Naming someone else's token must not log them out.
    assert await me_status(client, victim["access_token"]) == 200
    await refreshed(client, victim["refresh_token"])


async def test_logout_needs_a_live_access_token_of_an_active_user(client):
    user = await register(client)
    tokens = await login(client, user["username"])
    assert_unauthorized(await client.post(LOGOUT), "not_authenticated")
    assert_unauthorized(await client.post(LOGOUT, headers=bearer(tokens["refresh_token"])), "invalid_token")

    await set_active(client, user["id"], False)
    disabled = await client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    assert disabled.status_code == 403
    assert disabled.json()["code"] == "account_disabled"
    await set_active(client, user["id"], True)

    assert (await client.post(LOGOUT, headers=bearer(tokens["access_token"]))).status_code == 204
    assert_unauthorized(await client.post(LOGOUT, headers=bearer(tokens["access_token"])), "token_revoked")


# Every request checks the token and the account as they are now


def forged(client, **changes: Any) -> str:
    settings = client.app.state.settings
    values = {
        "user_id": 1,
        "role": "admin",
        "secret": settings.jwt_secret,
        "algorithm": settings.jwt_algorithm,
        "ttl_seconds": 900,
    }
    values.update(changes)
    return create_access_token(**values)[0]


def refresh_typed(client, user_id: int) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": str(user_id), "role": "admin", "type": "refresh", "jti": "j", "iat": now, "exp": now + 60}
    return jwt.encode(claims, client.app.state.settings.jwt_secret, algorithm="HS256")


# Authorization headers that must not let an admin's id in, each built for the app under test.
BAD_AUTHORIZATIONS: dict[str, Callable[[Any, int], str]] = {
    "expired": lambda client, user_id: (
        "Bearer " + forged(client, user_id=user_id, now=datetime.now(UTC) - timedelta(hours=1))
    ),
    "other-secret": lambda client, user_id: "Bearer " + forged(client, user_id=user_id, secret="s" * 64),
    "refresh-type": lambda client, user_id: "Bearer " + refresh_typed(client, user_id),
    "unknown-user": lambda client, user_id: "Bearer " + forged(client, user_id=user_id + 1000),
    "no-scheme": lambda client, user_id: forged(client, user_id=user_id),
    "basic": lambda client, user_id: "Basic YWRtaW46YWRtaW4=",
    "bare-scheme": lambda client, user_id: "Bearer",
    "blank-token": lambda client, user_id: "Bearer  ",
    "garbage": lambda client, user_id: "Bearer not.a.token",
}


# Token checks; an unknown user's token on PostgreSQL + Redis is test_jwt_attacks' case.
@sqlite_only
@pytest.mark.parametrize("case", list(BAD_AUTHORIZATIONS))
async def test_bad_access_tokens_are_401(client, case):
    admin_id = (await register(client))["id"]
    await set_role(client, admin_id, Role.ADMIN)
    header = BAD_AUTHORIZATIONS[case](client, admin_id)

    response = await client.get("/api/v1/users", headers={"Authorization": header})

    assert_unauthorized(response)
    # The same forger with the right key and scheme gets in: the token alone decided above.
    assert (await client.get("/api/v1/users", headers=bearer(forged(client, user_id=admin_id)))).status_code == 200


async def test_role_change_and_deactivation_apply_to_the_next_request(client, admin_headers):
    user = await register(client)
    token = bearer((await login(client, user["username"]))["access_token"])  # role "user" inside

    async def patch(**changes: Any) -> None:
        response = await client.patch(f"/api/v1/users/{user['id']}", json=changes, headers=admin_headers)
        assert response.status_code == 200, response.text

    assert (await client.get("/api/v1/users", headers=token)).status_code == 403
    await patch(role="admin")
    assert (await client.get("/api/v1/users", headers=token)).status_code == 200
    await patch(role="guest")
    order = await client.post("/api/v1/orders", json={"items": [{"product_id": 1, "quantity": 1}]}, headers=token)
    assert order.status_code == 403
    assert (await client.get(ME, headers=token)).json()["role"] == "guest"
    await patch(is_active=False)
    disabled = await client.get(ME, headers=token)
    assert disabled.status_code == 403
    assert disabled.json()["code"] == "account_disabled"
    await patch(is_active=True)
    assert (await client.get(ME, headers=token)).status_code == 200


# Housekeeping


async def test_purge_removes_expired_token_rows_and_keeps_live_ones(client):
    user = await register(client)
    expired_family = await login(client, user["username"])
    live_family = await login(client, user["username"])
    live_refresh = await refreshed(client, live_family["refresh_token"])
    now = datetime.now(UTC)
    expired = [hash_refresh_token(expired_family["refresh_token"]), hash_refresh_token(live_family["refresh_token"])]
    async with client.app.state.database.sessionmaker() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash.in_(expired))
            .values(expires_at=now - timedelta(seconds=1))
        )
        session.add_all(
            [
                RevokedAccessToken(jti=unique("expired-jti-"), expires_at=now - timedelta(seconds=1)),
                RevokedAccessToken(jti="live-jti", expires_at=now + timedelta(minutes=10)),
            ]
        )
        await session.commit()
        removed = await maintenance.purge_expired(
            session=session,
            idempotency_ttl=timedelta(days=1),
            event_retention=timedelta(days=30),
            events_delivered=True,
        )
    # The family whose every token expired (its token went with it), the expired token of the live family, and
    # the expired revoked access token.
    assert removed == 3
    assert await scalar(client, select(RevokedAccessToken.jti)) == "live-jti"
    remaining = await scalar(client, select(RefreshToken.token_hash))
    assert remaining == hash_refresh_token(live_refresh["refresh_token"])
    assert await scalar(client, select(func.count()).select_from(RefreshToken)) == 1
    family = await scalar(client, select(RefreshTokenFamily.id))
    assert await scalar(client, select(func.count()).select_from(RefreshTokenFamily)) == 1
    assert family == await scalar(client, select(RefreshToken.family_id))
    await refreshed(client, live_refresh["refresh_token"])
