"""Who may call what: every endpoint of the contract against every kind of caller, and the OpenAPI that says so."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from httpx import ASGITransport, AsyncClient

from auth.roles import Role
from auth.security import hash_account_token, new_account_token
from database.connection import write_transaction
from main import create_app
from models import AccountToken, TokenPurpose, User
from tests.helpers import PASSWORD, create_category, create_product, place_order, register, signed_in, unique

API = "/api/v1"
CALLERS = ("anonymous", "guest", "user", "admin")

# Expected status per caller, in the order of CALLERS.
EVERYONE_200 = (200, 200, 200, 200)
SIGNED_IN_200 = (401, 200, 200, 200)
ADMIN_200 = (401, 403, 403, 200)
ADMIN_201 = (401, 403, 403, 201)
ADMIN_204 = (401, 403, 403, 204)
SIGNED_IN_202 = (401, 202, 202, 202)
SIGNED_IN_204 = (401, 204, 204, 204)


@dataclass
class World:
    """The callers, plus a separate admin and owner who provide fresh targets so that only the caller differs."""

    client: Any
    setup_admin: dict[str, str]
    owner: dict[str, Any]
    owner_headers: dict[str, str]
    probe_username: str
    probe_id: int
    category_id: int
    product_id: int
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def new_category(self) -> int:
        return (await create_category(self.client, self.setup_admin))["id"]

    async def new_product(self) -> int:
        return (await create_product(self.client, self.setup_admin, stock=1_000_000))["id"]

    async def new_order(self) -> int:
        response = await place_order(self.client, self.owner_headers, [(self.product_id, 1)])
        assert response.status_code == 201, response.text
        return response.json()["id"]


Request = tuple[str, dict[str, Any]]  # the concrete path and httpx keyword arguments
Prepare = Callable[[World, str], Awaitable[Request]]


def product_body(world: World) -> dict[str, Any]:
    return {"name": unique("Matrix product "), "price": "9.99", "stock": 5, "category_id": world.category_id}


async def register_body(world: World, caller: str) -> Request:
    name = unique("matrix")
    return f"{API}/auth/register", {"json": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}}


async def login_body(world: World, caller: str) -> Request:
    return f"{API}/auth/login", {"json": {"username": world.probe_username, "password": PASSWORD}}


async def refresh_body(world: World, caller: str) -> Request:
    _, request = await login_body(world, caller)
    tokens = (await world.client.post(f"{API}/auth/login", **request)).json()
    return f"{API}/auth/refresh", {"json": {"refresh_token": tokens["refresh_token"]}}


async def owner_profile(world: World, caller: str) -> Request:
    return f"{API}/users/{world.owner['id']}", {}


async def own_profile(world: World, caller: str) -> Request:
    return f"{API}/users/{world.users.get(caller, world.owner)['id']}", {}


async def patch_owner(world: World, caller: str) -> Request:
    return f"{API}/users/{world.owner['id']}", {"json": {"is_active": True}}


async def create_user_body(world: World, caller: str) -> Request:
    name = unique("made")
    return f"{API}/users", {"json": {"username": name, "email": f"{name}@example.com", "password": PASSWORD}}


async def fresh_target_sessions(world: World, caller: str) -> Request:
    return f"{API}/users/{(await register(world.client))['id']}/sessions", {}


async def own_fresh_account(world: World, caller: str) -> dict[str, Any]:
    """The caller's role in an account of its own, for the requests that end the caller's sessions or account.

    The anonymous and the disabled caller keep what they have: nothing, and a token of a disabled account.
    """
    if caller in ("anonymous", "disabled"):
        return {"headers": world.headers[caller]}
    headers, _ = await signed_in(world.client, Role(caller))
    return {"headers": headers}


async def change_own_password(world: World, caller: str) -> Request:
    body = {"current_password": PASSWORD, "new_password": PASSWORD}
    return f"{API}/users/me/password", {**await own_fresh_account(world, caller), "json": body}


async def end_own_sessions(world: World, caller: str) -> Request:
    return f"{API}/users/me/sessions", await own_fresh_account(world, caller)


async def erase_own_account(world: World, caller: str) -> Request:
    return f"{API}/users/me", {**await own_fresh_account(world, caller), "json": {"password": PASSWORD}}


async def reset_request_body(world: World, caller: str) -> Request:
    return f"{API}/auth/password-reset", {"json": {"email": f"{world.probe_username}@example.com"}}


async def mailed_token(world: World, purpose: TokenPurpose) -> str:
    """A live token of the probe account, as its mail would carry it."""
    token = new_account_token()
    database = world.client.app.state.database
    # A write transaction: the reset mail of an earlier row may be writing its own token meanwhile.
    async with database.sessionmaker() as session, write_transaction(session):
        probe = await session.get(User, world.probe_id)
        assert probe is not None
        expires_at = datetime.now(UTC) + timedelta(hours=1)
        session.add(
            AccountToken(
                user_id=probe.id,
                purpose=purpose,
                token_hash=hash_account_token(token),
                email=probe.email,
                expires_at=expires_at,
            )
        )
    return token


async def reset_confirm_body(world: World, caller: str) -> Request:
    token = await mailed_token(world, TokenPurpose.RESET_PASSWORD)
    return f"{API}/auth/password-reset/confirm", {"json": {"token": token, "new_password": PASSWORD}}


async def verify_email_body(world: World, caller: str) -> Request:
    return f"{API}/auth/verify-email", {"json": {"token": await mailed_token(world, TokenPurpose.VERIFY_EMAIL)}}


async def empty_profile_patch(world: World, caller: str) -> Request:
    return f"{API}/users/me", {"json": {}}


async def create_category_body(world: World, caller: str) -> Request:
    return f"{API}/categories", {"json": {"name": unique("Matrix category ")}}


async def existing_category(world: World, caller: str) -> Request:
    return f"{API}/categories/{world.category_id}", {}


async def replace_fresh_category(world: World, caller: str) -> Request:
    return f"{API}/categories/{await world.new_category()}", {"json": {"name": unique("Renamed ")}}


async def fresh_category(world: World, caller: str) -> Request:
    return f"{API}/categories/{await world.new_category()}", {}


async def create_product_body(world: World, caller: str) -> Request:
    return f"{API}/products", {"json": product_body(world)}


async def existing_product(world: World, caller: str) -> Request:
    return f"{API}/products/{world.product_id}", {}


async def replace_fresh_product(world: World, caller: str) -> Request:
    return f"{API}/products/{await world.new_product()}", {"json": product_body(world)}


async def fresh_product(world: World, caller: str) -> Request:
    return f"{API}/products/{await world.new_product()}", {}


async def order_body(world: World, caller: str) -> Request:
    return f"{API}/orders", {"json": {"items": [{"product_id": world.product_id, "quantity": 1}]}}


async def owners_order(world: World, caller: str) -> Request:
    return f"{API}/orders/{await world.new_order()}", {}


async def cancel_owners_order(world: World, caller: str) -> Request:
    return f"{API}/orders/{await world.new_order()}/cancel", {}


async def pay_fresh_order(world: World, caller: str) -> Request:
    return f"{API}/orders/{await world.new_order()}/status", {"json": {"status": "paid"}}


class Row(NamedTuple):
    method: str
    template: str
    expected: tuple[int, int, int, int]
    prepare: Prepare | None = None


MATRIX = [
    Row("POST", "/api/v1/auth/register", (201, 201, 201, 201), register_body),
    Row("POST", "/api/v1/auth/login", EVERYONE_200, login_body),
    Row("POST", "/api/v1/auth/refresh", EVERYONE_200, refresh_body),
    Row("POST", "/api/v1/auth/password-reset", (202, 202, 202, 202), reset_request_body),
    Row("POST", "/api/v1/auth/password-reset/confirm", (204, 204, 204, 204), reset_confirm_body),
    Row("POST", "/api/v1/auth/verify-email", (204, 204, 204, 204), verify_email_body),
    Row("GET", "/api/v1/users/me", SIGNED_IN_200),
    # Every role manages its own account; those that end the caller's sessions get an account of their own.
    Row("PATCH", "/api/v1/users/me", SIGNED_IN_200, empty_profile_patch),
    Row("POST", "/api/v1/users/me/verification-email", SIGNED_IN_202),
    Row("POST", "/api/v1/users/me/password", SIGNED_IN_200, change_own_password),
    Row("DELETE", "/api/v1/users/me/sessions", SIGNED_IN_204, end_own_sessions),
    Row("DELETE", "/api/v1/users/me", SIGNED_IN_204, erase_own_account),
    Row("GET", "/api/v1/users", ADMIN_200),
    Row("GET", "/api/v1/events", ADMIN_200),
    Row("POST", "/api/v1/users", ADMIN_201, create_user_body),
    Row("GET", "/api/v1/users/{id}", ADMIN_200, owner_profile),
    Row("GET", "/api/v1/users/{id}", SIGNED_IN_200, own_profile),
    Row("PATCH", "/api/v1/users/{id}", ADMIN_200, patch_owner),
    Row("DELETE", "/api/v1/users/{id}/sessions", ADMIN_204, fresh_target_sessions),
    Row("GET", "/api/v1/categories", SIGNED_IN_200),
    Row("POST", "/api/v1/categories", ADMIN_201, create_category_body),
    Row("GET", "/api/v1/categories/{id}", SIGNED_IN_200, existing_category),
    Row("PUT", "/api/v1/categories/{id}", ADMIN_200, replace_fresh_category),
    Row("DELETE", "/api/v1/categories/{id}", ADMIN_204, fresh_category),
    Row("GET", "/api/v1/products", SIGNED_IN_200),
    Row("POST", "/api/v1/products", ADMIN_201, create_product_body),
    Row("GET", "/api/v1/products/{id}", SIGNED_IN_200, existing_product),
    Row("PUT", "/api/v1/products/{id}", ADMIN_200, replace_fresh_product),
    Row("DELETE", "/api/v1/products/{id}", ADMIN_204, fresh_product),
    Row("POST", "/api/v1/orders", (401, 403, 201, 201), order_body),
    Row("GET", "/api/v1/orders", SIGNED_IN_200),
    # Someone else's order: it does not exist as far as a non-admin can tell.
    Row("GET", "/api/v1/orders/{id}", (401, 404, 404, 200), owners_order),
    Row("PATCH", "/api/v1/orders/{id}/status", ADMIN_200, pay_fresh_order),
    # The owner's pending order: only the owner and admins may cancel it, and to others it does not exist.
    Row("POST", "/api/v1/orders/{id}/cancel", (401, 404, 404, 200), cancel_owners_order),
    Row("GET", "/health", EVERYONE_200),
    Row("GET", "/ready", EVERYONE_200),
    Row("GET", "/metrics", EVERYONE_200),
    Row("GET", "/docs", EVERYONE_200),
    Row("GET", "/redoc", EVERYONE_200),
    Row("GET", "/openapi.json", EVERYONE_200),
    # Last: it ends the callers' tokens.
    Row("POST", "/api/v1/auth/logout", (401, 204, 204, 204)),
]
PUBLIC = {(row.method, row.template) for row in MATRIX if row.expected[0] != 401}
UNDOCUMENTED = {("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")}


async def build_world(client) -> World:
    setup_admin, _ = await signed_in(client, Role.ADMIN)
    owner_headers, owner = await signed_in(client)
    category_id = (await create_category(client, setup_admin))["id"]
    product_id = (await create_product(client, setup_admin, stock=1_000_000, category_id=category_id))["id"]
    probe = await register(client)
    world = World(
        client=client,
        setup_admin=setup_admin,
        owner=owner,
        owner_headers=owner_headers,
        probe_username=probe["username"],
        probe_id=probe["id"],
        category_id=category_id,
        product_id=product_id,
    )
    world.headers["anonymous"] = {}
    for role in Role:
        world.headers[role.value], world.users[role.value] = await signed_in(client, role)
    # A disabled account holds a token that was valid when issued; it opens nothing that needs one.
    world.headers["disabled"], world.users["disabled"] = await signed_in(client, Role.ADMIN)
    response = await client.patch(
        f"{API}/users/{world.users['disabled']['id']}", json={"is_active": False}, headers=setup_admin
    )
    assert response.status_code == 200
    return world


def expectations(row: Row) -> dict[str, int]:
    expected = dict(zip(CALLERS, row.expected, strict=True))
    expected["disabled"] = 403 if row.expected[0] == 401 else row.expected[0]
    return expected


async def test_role_matrix(client):
    world = await build_world(client)
    mismatches = []
    for row in MATRIX:
        for caller, status in expectations(row).items():
            path, kwargs = await row.prepare(world, caller) if row.prepare else (row.template, {})
            kwargs.setdefault("headers", world.headers[caller])
            response = await client.request(row.method, path, **kwargs)
            problem = response.json() if response.status_code >= 400 else {}
            if status == 401:
                wrong = response.headers.get("WWW-Authenticate") != "Bearer"
            elif status == 403:
                wanted = "account_disabled" if caller == "disabled" else "insufficient_role"
                wrong = problem.get("code") != wanted
            else:
                wrong = False
            if response.status_code != status or wrong:
                mismatches.append(f"{caller} {row.method} {row.template}: {response.status_code} {response.text[:120]}")
    assert not mismatches, "\n".join(mismatches)


async def test_openapi_declares_bearer_on_every_protected_operation(sqlite_backend):
    # The document depends on the code only, so one backend suffices.
    app = create_app(sqlite_backend.settings())
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://shop.test") as client:
        document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    bearer_schemes = {
        name
        for name, scheme in schemes.items()
        if (scheme["type"], scheme.get("scheme", "").lower()) == ("http", "bearer") or scheme["type"] == "oauth2"
    }
    assert any(schemes[name]["type"] == "http" for name in bearer_schemes)

    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    # Every documented operation has a row in the matrix above, and the other way round.
    assert set(operations) == {(row.method, row.template) for row in MATRIX} - UNDOCUMENTED
    for key, operation in operations.items():
        requirements = operation.get("security", [])
        responses = operation["responses"]
        if key in PUBLIC:
            assert requirements == [], key
            continue
        assert requirements, key
        # Each alternative is a bearer token: any of them lets a client call the operation.
        assert all(set(requirement) <= bearer_schemes for requirement in requirements), key
        assert {"401", "403"} <= set(responses), key
        assert "WWW-Authenticate" in responses["401"].get("headers", {}), key
        for status in ("401", "403"):
            assert "application/problem+json" in responses[status]["content"], (key, status)
    for path in ("/health", "/ready", "/metrics"):
        assert "get" in document["paths"][path]
