"""Liveness and readiness: /health answers while the process runs, /ready only while its backing services answer."""

import pytest

from tests.conftest import sqlite_only

# Nothing listens on port 1, so connecting fails at once (no waiting for a timeout).
UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "request_id"}


async def test_health_and_ready_are_ok(client, backend):
    health = await client.get("/health")
    ready = await client.get("/ready")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if backend.redis_url else {})
    assert ready.json() == {"status": "ok", "checks": expected}


# Overriding the service settings needs only one backend.
@sqlite_only
@pytest.mark.parametrize(
    ("overrides", "down", "up"),
    [
        pytest.param({"database_url": UNREACHABLE_DATABASE}, "database", None, id="database"),
        pytest.param({"redis_url": UNREACHABLE_REDIS}, "redis", "database", id="redis"),
    ],
)
async def test_ready_is_503_while_a_service_is_unreachable(app_client, overrides, down, up):
    async with app_client(**overrides) as client:
        ready = await client.get("/ready")
        health = await client.get("/health")

    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert body.keys() >= PROBLEM_MEMBERS
    assert body["status"] == 503
    assert body["code"] == "not_ready"
    assert body["request_id"] == ready.headers["x-request-id"]
    assert body["checks"][down] == "unavailable"
    if up is not None:
        assert body["checks"][up] == "ok"
    # Liveness does not depend on the services: restarting the process would not bring them back.
    assert health.status_code == 200


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_infrastructure_endpoints_need_no_token_and_declare_none(client, path):
    operations = (await client.get("/openapi.json")).json()["paths"]

    assert (await client.get(path)).status_code == 200
    assert "security" not in operations[path]["get"]
