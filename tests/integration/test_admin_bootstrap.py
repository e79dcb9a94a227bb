"""The first admin: from the ADMIN_* settings at start-up, and from `python cli.py create-admin`."""

import asyncio
import getpass

import pytest
from sqlalchemy import select

import cli
from config import Settings, get_settings
from models import User
from tests.helpers import PASSWORD, bearer, register

ADMIN = {"admin_username": "root", "admin_email": "root@example.com", "admin_password": "bootstrap-password"}
LOGIN = "/api/v1/auth/login"


async def users(client) -> list[tuple[str, str, str]]:
    async with client.app.state.database.sessionmaker() as session:
        rows = await session.execute(select(User.username, User.email, User.role).order_by(User.id))
        return [tuple(row) for row in rows]


async def verified(client, username: str) -> bool:
    async with client.app.state.database.sessionmaker() as session:
        return await session.scalar(select(User.email_verified).where(User.username == username))


async def login_status(client, username: str, password: str) -> int:
    return (await client.post(LOGIN, json={"username": username, "password": password})).status_code


async def test_admin_settings_create_the_admin_once(app_client):
    async with app_client(**ADMIN) as client:
        assert await users(client) == [("root", "root@example.com", "admin")]
        # Nobody could follow a verification mail for it: its address counts as verified.
        assert await verified(client, "root") is True
        tokens = (await client.post(LOGIN, json={"username": "root", "password": "bootstrap-password"})).json()
        assert (await client.get("/api/v1/users", headers=bearer(tokens["access_token"]))).status_code == 200
    # A restart, even with other values, leaves the existing account alone.
    changed = {**ADMIN, "admin_email": "other@example.com", "admin_password": "another-password"}
    async with app_client(**changed) as client:
        assert await users(client) == [("root", "root@example.com", "admin")]
        assert await login_status(client, "root", "bootstrap-password") == 200
        assert await login_status(client, "root", "another-password") == 401


async def test_admin_settings_never_promote_an_existing_account(app_client):
    async with app_client() as client:
        await register(client, username="root")
    async with app_client(**ADMIN) as client:
        assert await users(client) == [("root", "root@example.com", "user")]
        assert await login_status(client, "root", "bootstrap-password") == 401


@pytest.mark.parametrize("missing", sorted(ADMIN))
async def test_incomplete_admin_settings_create_nobody(app_client, missing):
    async with app_client(**{**ADMIN, missing: None}) as client:
        assert await users(client) == []


@pytest.fixture
def cli_environment(backend, monkeypatch):
    """`cli.main` reads its settings from the environment, through a cached get_settings()."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", backend.database_url)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run_cli(*arguments: str) -> int:
    # cli.main runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(cli.main, list(arguments))


async def test_cli_creates_an_admin(cli_environment, client, capsys):
    created = await run_cli("create-admin", "--username", "boss", "--email", "boss@example.com", "--password", PASSWORD)
    assert created == 0
    assert "created admin 'boss'" in capsys.readouterr().out
    assert await users(client) == [("boss", "boss@example.com", "admin")]
    assert await verified(client, "boss") is True
    assert await login_status(client, "boss", PASSWORD) == 200


@pytest.mark.parametrize(
    ("username", "email"), [("BOSS", "new@example.com"), ("boss2", "Boss@Example.com")], ids=["username", "email"]
)
async def test_cli_refuses_a_duplicate(cli_environment, client, capsys, username, email):
    created = await run_cli("create-admin", "--username", "boss", "--email", "boss@example.com", "--password", PASSWORD)
    assert created == 0
    capsys.readouterr()

    refused = await run_cli("create-admin", "--username", username, "--email", email, "--password", "other-pass")

    assert refused == 1
    assert "already in use" in capsys.readouterr().err
    assert await users(client) == [("boss", "boss@example.com", "admin")]
    assert await login_status(client, "boss", "other-pass") == 401


async def test_cli_asks_for_the_password_when_not_given(cli_environment, client, monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "prompted-password")
    assert await run_cli("create-admin", "--username", "boss", "--email", "boss@example.com") == 0
    assert await login_status(client, "boss", "prompted-password") == 200
