"""Structured logs: one JSON access line per request, the level from LOG_LEVEL, and never a password or a token."""

import io
import json
import logging
from typing import Any

import pytest

from config import Settings
from observability.logging import configure_logging
from tests.conftest import sqlite_only
from tests.helpers import PASSWORD, bearer, mail_sent, register, signed_in

ACCESS_LOGGER = "shop.access"
TEST_SIDE_LOGGERS = ("httpx", "mail.")


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


async def test_no_mailed_or_session_token_is_ever_logged(app_client, backend, smtp, caplog):
    async with app_client(**smtp.settings, log_level="DEBUG", rate_limit_enabled=True) as client:
        output = json_output()
        logging.getLogger().addHandler(caplog.handler)

        user = await register(client)
        await mail_sent(client)
        verification = smtp.inbox.to(user["email"])[-1].token
        # A token in a query string (where a careless client might put it) is not logged either.
        verified = await client.post(f"/api/v1/auth/verify-email?token={verification}", json={"token": verification})
        await client.post("/api/v1/auth/password-reset", json={"email": user["email"]})
        await mail_sent(client)
        reset = smtp.inbox.to(user["email"])[-1].token
        confirmed = await client.post(
            "/api/v1/auth/password-reset/confirm", json={"token": reset, "new_password": "reset-Password-1"}
        )
        first = (
            await client.post("/api/v1/auth/login", json={"username": user["username"], "password": "reset-Password-1"})
        ).json()
        changed = await client.post(
            "/api/v1/users/me/password",
            json={"current_password": "reset-Password-1", "new_password": "changed-Password-2"},
            headers=bearer(first["access_token"]),
        )
        second = changed.json()
        signed_out = await client.delete("/api/v1/users/me/sessions", headers=bearer(second["access_token"]))
        stale = await client.get("/api/v1/users/me", headers=bearer(first["access_token"]))

    assert [verified.status_code, confirmed.status_code, changed.status_code, signed_out.status_code] == [
        204,
        204,
        200,
        204,
    ]
    assert stale.status_code == 401
    secrets = [verification, reset, "reset-Password-1", "changed-Password-2"]
    secrets += [pair[kind] for pair in (first, second) for kind in ("access_token", "refresh_token")]
    # The test's own HTTP client and mail server log what they send and receive; they are not the service.
    records = [record for record in caplog.records if not record.name.startswith(TEST_SIDE_LOGGERS)]
    assert any(record.name == ACCESS_LOGGER for record in records)
    for record in records:
        text = record.getMessage() + repr(vars(record))
        for secret in secrets:
            assert secret not in text, (record.name, record.msg)
    written = [line for line in output.getvalue().splitlines() if not json.loads(line)["logger"].startswith("httpx")]
    assert any('"route": "/api/v1/auth/verify-email"' in line for line in written)
    for secret in secrets:
        assert not [line for line in written if secret in line]
