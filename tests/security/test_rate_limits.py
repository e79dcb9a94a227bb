"""Rate limits over HTTP: headers, 429s, per-user and per-IP budgets, forwarded addresses and a Redis outage."""

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from infrastructure.rate_limits import open_rate_limiter
from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, AppClient, assert_problem, bearer, register, signed_in, unique
from tests.redis_commands import monitored

PRODUCTS = "/api/v1/products"
ME = "/api/v1/users/me"
# Nothing listens on port 1: connections to it are refused at once.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@asynccontextmanager
async def from_address(client: AppClient, ip: str) -> AsyncIterator[AsyncClient]:
    """Another client on the same running app whose requests come from peer address `ip`."""
    transport = ASGITransport(app=client.app, client=(ip, 50000))
    async with AsyncClient(transport=transport, base_url="http://shop.test") as other:
        yield other


def limits(default: str = "100/minute", auth: str = "100/minute", **overrides):
    return {"rate_limit_enabled": True, "rate_limit_default": default, "rate_limit_auth": auth, **overrides}


def budget(response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the RateLimit-* headers, which must all be integers."""
    return tuple(int(response.headers[f"RateLimit-{name}"]) for name in ("Limit", "Remaining", "Reset"))


def assert_rate_limited(response, limit: int) -> None:
    assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert budget(response)[:2] == (limit, 0)


async def metric(client: AppClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    return sum(sample.value for sample in samples if sample.name == name)


async def test_every_api_response_counts_down_then_429(app_client):
    async with app_client(**limits(default="4/minute")) as client:
        headers, _ = await signed_in(client)
        responses = [
            await client.get(ME, headers=headers),
            await client.get(f"{PRODUCTS}/999", headers=headers),
            await client.get(PRODUCTS, params={"size": 0}, headers=headers),
            await client.put(ME, headers=headers),
        ]
        assert [response.status_code for response in responses] == [200, 404, 422, 405]
        for remaining, response in zip([3, 2, 1, 0], responses, strict=True):
            limit, left, reset = budget(response)
            assert (limit, left) == (4, remaining)
            assert 0 <= reset <= 60

        assert_rate_limited(await client.get(ME, headers=headers), limit=4)
        # The infrastructure endpoints sit outside /api/ and are never limited.
        health = await client.get("/health")
        assert health.status_code == 200
        assert "RateLimit-Limit" not in health.headers


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/login", {"username": "nobody", "password": "wrong-password"}),
        ("/api/v1/auth/register", {"username": "x"}),
        ("/api/v1/auth/refresh", {"refresh_token": "not-a-token"}),
        ("/api/v1/auth/password-reset", {"email": "not-an-address"}),
        ("/api/v1/auth/password-reset/confirm", {"token": "not-a-token", "new_password": "a-new-password"}),
        ("/api/v1/auth/verify-email", {"token": "not-a-token"}),
    ],
)
async def test_auth_endpoints_have_the_stricter_limit(app_client, path, body):
    async with app_client(**limits(default="50/minute", auth="2/minute")) as client:
        for remaining in (1, 0):
            response = await client.post(path, json=body)
            assert response.status_code in (400, 401, 422)
            assert budget(response)[:2] == (2, remaining)
        assert_rate_limited(await client.post(path, json=body), limit=2)
        # Other API paths still have their own, larger budget.
        assert budget(await client.get(PRODUCTS))[:2] == (50, 49)


async def test_brute_force_login_is_cut_off_for_that_address_only(app_client):
    async with app_client(**limits(auth="5/minute")) as client:
        victim = await register(client)
        async with from_address(client, "203.0.113.66") as attacker:
            for attempt in range(5):
                guess = {"username": victim["username"], "password": f"guess-{attempt:04d}"}
                assert (await attacker.post("/api/v1/auth/login", json=guess)).status_code == 401
            # Even the right password is refused now: the attacker cannot tell it was right.
            right = {"username": victim["username"], "password": PASSWORD}
            assert_rate_limited(await attacker.post("/api/v1/auth/login", json=right), limit=5)
        # The victim, elsewhere, signs in as usual.
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_each_user_has_a_budget_of_their_own(app_client):
    async with app_client(**limits(default="3/minute")) as client:
        alice, _ = await signed_in(client)
        bob, _ = await signed_in(client)
        for _ in range(3):
            assert (await client.get(ME, headers=alice)).status_code == 200
        assert_rate_limited(await client.get(ME, headers=alice), limit=3)

        # Same address, another user: untouched by Alice's requests.
        assert budget(await client.get(ME, headers=bob))[:2] == (3, 2)
        # A token with a forged signature is no user's: it counts against the address, not Alice.
        header, payload, _ = alice["Authorization"].removeprefix("Bearer ").split(".")
        forged = await client.get(ME, headers=bearer(f"{header}.{payload}.AAAA"))
        assert forged.status_code == 401
        assert budget(forged)[:2] == (3, 2)


async def test_anonymous_clients_are_limited_per_address(app_client):
    async with (
        app_client(**limits(default="2/minute")) as client,
        from_address(client, "198.51.100.1") as first,
        from_address(client, "198.51.100.2") as second,
    ):
        for remaining in (1, 0):
            assert budget(await first.get(PRODUCTS))[:2] == (2, remaining)
        assert_rate_limited(await first.get(PRODUCTS), limit=2)
        assert budget(await second.get(PRODUCTS))[:2] == (2, 1)


@pytest.mark.parametrize("trusted_proxies", [[], ["10.0.0.0/8"]], ids=["no-proxies", "peer-not-a-proxy"])
async def test_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(app_client, trusted_proxies):
    async with app_client(**limits(default="3/minute", trusted_proxies=trusted_proxies)) as client:
        for number in range(3):
            spoofed = {"X-Forwarded-For": f"198.51.100.{number}"}
            assert (await client.get(PRODUCTS, headers=spoofed)).status_code == 401
        assert_rate_limited(await client.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.99"}), limit=3)


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(app_client):
    async with (
        app_client(**limits(default="2/minute", trusted_proxies=["10.0.0.0/8"])) as client,
        from_address(client, "10.0.0.5") as proxy,
    ):
        for remaining in (1, 0):
            response = await proxy.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.1"})
            assert budget(response)[:2] == (2, remaining)
        # A forged left-most hop does not help: the right-most untrusted hop is still 198.51.100.1.
        spoofed = await proxy.get(PRODUCTS, headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.0.0.7"})
        assert_rate_limited(spoofed, limit=2)
        # Another client behind the same proxy has its own budget.
        other = await proxy.get(PRODUCTS, headers={"X-Forwarded-For": "198.51.100.2"})
        assert budget(other)[:2] == (2, 1)


async def test_processes_share_one_budget_with_redis_and_keep_their_own_without(app_client, backend):
    async with app_client(**limits(default="2/minute")) as first, app_client(**limits(default="2/minute")) as second:
        assert budget(await first.get(PRODUCTS))[:2] == (2, 1)
        if backend.redis_url is None:
            # Memory storage is per process, as the README says: the second app starts with a full budget.
            assert budget(await second.get(PRODUCTS))[:2] == (2, 1)
            return
        assert budget(await second.get(PRODUCTS))[:2] == (2, 0)
        assert_rate_limited(await first.get(PRODUCTS), limit=2)


async def test_unreachable_redis_lets_requests_through_and_counts_the_failures(app_client):
    # REDIS_URL also holds the revocations, which fail closed (503) rather than accept revoked tokens; the paths
    # that need no revocation check (register, login) show the limiter on its own failing open.
    async with app_client(**limits(auth="1/minute", redis_url=UNREACHABLE_REDIS)) as client:
        errors_before = await metric(client, "rate_limit_storage_errors_total")
        username = unique("user")
        registered = await register(client, username=username)
        for _ in range(3):
            response = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
        assert await metric(client, "rate_limit_storage_errors_total") == errors_before + 4

        signed = bearer(response.json()["access_token"])
        refused = await client.get(f"/api/v1/users/{registered['id']}", headers=signed)
        assert_problem(refused, 503, "service_unavailable")
        assert int(refused.headers["Retry-After"]) >= 1


@sqlite_only  # the revocation store is Redis whatever the database
async def test_revocation_checks_give_up_on_a_silent_redis_after_its_timeout(app_client):
    # Listening but never answering: without REDIS_TIMEOUT_SECONDS the request would hang.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        redis_url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        async with app_client(redis_url=redis_url, redis_timeout_seconds=0.2) as client:
            connection = client.app.state.redis.connection_pool.connection_kwargs
            assert (connection["socket_timeout"], connection["socket_connect_timeout"]) == (0.2, 0.2)
            headers, _ = await signed_in(client)
            refused = await client.get(ME, headers=headers)
    assert_problem(refused, 503, "service_unavailable")
    assert int(refused.headers["Retry-After"]) >= 1


@pytest.fixture(params=["refused", "silent"])
def dead_redis(request) -> Iterator[str]:
    """A Redis URL that refuses connections, or one whose server accepts them and never answers."""
    if request.param == "refused":
        yield UNREACHABLE_REDIS
        return
    # Listening but never accepting: the kernel completes the handshake, then nothing is ever read or written.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        yield f"redis://127.0.0.1:{silent.getsockname()[1]}/0"


@asynccontextmanager
async def limit_storage_at(client: AsyncClient, redis_url: str) -> AsyncIterator[None]:
    """The app's rate limits kept in `redis_url` for a while; its revocations stay where they were."""
    app_state = client.app.state  # type: ignore[attr-defined]
    original, app_state.rate_limiter = app_state.rate_limiter, open_rate_limiter(redis_url)
    try:
        yield
    finally:
        await app_state.rate_limiter.aclose()
        app_state.rate_limiter = original


async def test_failing_limit_storage_on_its_own_keeps_signed_in_users_served(app_client, dead_redis):
    async with app_client(**limits(default="1/minute")) as client:
        headers, _ = await signed_in(client)
        async with limit_storage_at(client, dead_redis):
            errors_before = await metric(client, "rate_limit_storage_errors_total")
            for _ in range(2):
                response = await client.get(ME, headers=headers)
                assert response.status_code == 200
                assert "RateLimit-Limit" not in response.headers
            assert await metric(client, "rate_limit_storage_errors_total") == errors_before + 2


async def test_revocations_are_checked_when_the_limit_storage_fails(app_client, dead_redis):
    # The limiter's script could not say whether the token is revoked: the auth dependency asks the store itself.
    async with app_client(**limits(default="10/minute")) as client:
        headers, _ = await signed_in(client)
        async with limit_storage_at(client, dead_redis):
            assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
            assert_problem(await client.get(ME, headers=headers), 401, "token_revoked")


async def test_revoked_tokens_are_refused_with_the_limiter_on(app_client):
    async with app_client(**limits(default="10/minute")) as client:
        headers, _ = await signed_in(client)
        assert (await client.get(ME, headers=headers)).status_code == 200
        assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        refused = await client.get(ME, headers=headers)
        assert_problem(refused, 401, "token_revoked")
        assert budget(refused)[:2] == (10, 7)


@pytest.mark.parametrize("revoked", [False, True], ids=["valid", "revoked"])
async def test_an_authenticated_request_makes_one_redis_call(app_client, backend, revoked):
    if backend.redis_url is None:
        pytest.skip("without Redis, limits are kept in memory and revocations in the database")
    async with app_client(**limits()) as client:
        headers, _ = await signed_in(client)
        if revoked:
            assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
        # The first script call loads the script; count a request in the steady state.
        await client.get(PRODUCTS)
        async with monitored(backend.redis_url) as commands:
            response = await client.get(ME, headers=headers)
        assert response.status_code == (401 if revoked else 200)
        # One script counts the hit and reads the token's revocation key.
        assert commands.sent == ["EVALSHA"]
        assert "EXISTS" in commands.scripted
