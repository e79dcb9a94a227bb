"""Structured logs: one JSON access line per request, the level from LOG_LEVEL, and never a password or a token."""

import io
import json
import logging
from typing import Any

import pytest

from config import Settings
from observability.logging import configure_logging
from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, bearer, register, signed_in

ACCESS_LOGGER = "shop.access"


@pytest.fixture(autouse=True)
def _restore_logging():
    """create_app points the root logger at this test's captured stdout; leave it on a stream that outlives it."""
    yield
    configure_logging("WARNING")


def json_output() -> io.StringIO:
    """Send the JSON handler that create_app installed on the root logger into a buffer."""
    buffer = io.StringIO()
    (handler,) = logging.getLogger().handlers
    handler.setStream(buffer)
    return buffer


def access_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    # json.loads on every line: a line that is not one JSON object fails the test.
    return [line for line in map(json.loads, buffer.getvalue().splitlines()) if line["logger"] == ACCESS_LOGGER]


@sqlite_only
@pytest.mark.parametrize("signed", [True, False], ids=["signed-in", "anonymous"])
async def test_one_access_line_per_request_with_its_context(app_client, signed):
    async with app_client(log_level="INFO") as client:
        headers, user = await signed_in(client)
        output = json_output()
        response = await client.get(
            f"/api/v1/users/{user['id']}", headers={**(headers if signed else {}), "X-Request-ID": "trace-42"}
        )

    (line,) = access_lines(output)
    assert response.status_code == (200 if signed else 401)
    assert line["request_id"] == response.headers["x-request-id"] == "trace-42"
    assert line["user_id"] == (user["id"] if signed else None)
    assert line["route"] == "/api/v1/users/{id}"
    assert line["path"] == f"/api/v1/users/{user['id']}"
    assert line["method"] == "GET"
    assert line["status"] == response.status_code
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "INFO"


@sqlite_only
@pytest.mark.parametrize(("level", "logged"), [("info", True), ("Warning", False)])
async def test_log_level_from_the_environment_is_honoured(app_client, monkeypatch, level, logged):
    monkeypatch.setenv("LOG_LEVEL", level)
    configured = Settings().log_level

    async with app_client(log_level=configured) as client:
        output = json_output()
        responses = [await client.get(path) for path in ("/health", "/ready", "/no/such/path")]

    assert configured == level.upper()
    assert logging.getLogger(ACCESS_LOGGER).getEffectiveLevel() == getattr(logging, configured)
    lines = access_lines(output)
    if logged:
        assert [line["request_id"] for line in lines] == [response.headers["x-request-id"] for response in responses]
    else:
        assert lines == []


async def test_no_password_token_or_key_is_ever_logged(app_client, backend, caplog):
    wrong_password = "wrong-Password-77"
    too_long_password = "L0ng-" + "x" * 80
    async with app_client(log_level="DEBUG", rate_limit_enabled=True) as client:
        output = json_output()
        # create_app replaced the root logger's handlers, pytest's capture among them.
        logging.getLogger().addHandler(caplog.handler)

        user = await register(client)
        rejected = await client.post(
            "/api/v1/auth/register",
            json={"username": "toolong", "email": "toolong@example.com", "password": too_long_password},
        )
        login = {"username": user["username"], "password": PASSWORD}
        first = (await client.post("/api/v1/auth/login", json=login)).json()
        wrong = await client.post("/api/v1/auth/login", json={**login, "password": wrong_password})
        second = (await client.post("/api/v1/auth/login", data=login)).json()
        third = (await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
        reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        tampered = await client.get("/api/v1/users/me", headers=bearer(second["access_token"] + "x"))
        logout = await client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": second["refresh_token"]},
            headers=bearer(second["access_token"]),
        )
        revoked = await client.get("/api/v1/users/me", headers=bearer(second["access_token"]))

    statuses = [response.status_code for response in (rejected, wrong, reused, tampered, logout, revoked)]
    assert statuses == [422, 401, 401, 401, 204, 401]
    tokens = [pair[kind] for pair in (first, second, third) for kind in ("access_token", "refresh_token")]
    secrets = [PASSWORD, wrong_password, too_long_password, backend.settings().jwt_secret, *tokens]
    # "$2b$" starts every bcrypt hash: a logged hash can be cracked offline.
    secrets.append("$2b$")

    records = caplog.records
    assert any(record.name == ACCESS_LOGGER for record in records)
    # The message with its arguments, and every attribute: the extras are attributes of the record.
    texts = [(record.name, record.msg, record.getMessage() + repr(vars(record))) for record in records]
    assert [(name, msg, secret) for name, msg, text in texts for secret in secrets if secret in text] == []
    written = output.getvalue()
    assert written
    assert [secret for secret in secrets if secret in written] == []
