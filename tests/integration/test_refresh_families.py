"""A refresh-token family and its revocation take turns: no token of a revoked family ever works again.

Rotation (POST /auth/refresh) and revocation (reuse of a used token, logout naming the family) of one family may
run at once on different processes. First two transactions interleaved by hand on PostgreSQL, at the moment the
race is lost, then the race itself through two app instances on each backend.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from itertools import cycle
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.auth import AuthService, TokenPair
from services.errors import AuthenticationError
from tests.helpers import bearer, login, register

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
LOCK_WAITERS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
# A deadline for an interleaving gone wrong, never a speed requirement.
DEADLINE_SECONDS = 30
REVOCATIONS = ["reuse", "logout"]


class HeldAtCommit(AsyncSession):
    """A session whose `pause_at`-th commit waits until the test lets it go: a transaction held open at its end."""

    pause_at = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits = 0
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def commit(self) -> None:
        self.commits += 1
        if self.commits == self.pause_at:
            self.reached.set()
            await self.released.wait()
        await super().commit()


@asynccontextmanager
async def held_session(client: AsyncClient, pause_at: int = 1) -> AsyncIterator[HeldAtCommit]:
    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    opened = async_sessionmaker(engine, class_=HeldAtCommit, expire_on_commit=False, autoflush=False)
    async with opened() as session:
        session.pause_at = pause_at
        yield session


async def until_waiting_or_done(engine: AsyncEngine, task: asyncio.Future[Any]) -> None:
    """Return once `task` waits for a lock (PostgreSQL shows it) or has finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    async with engine.connect() as observer:
        while not task.done():
            waiting = await observer.scalar(text(LOCK_WAITERS))
            # pg_stat_activity is a snapshot per transaction; end it so the next poll looks again.
            await observer.rollback()
            if waiting:
                return
            assert loop.time() < deadline, "the second transaction neither waited nor finished"
            await asyncio.sleep(0.01)


async def a_used_and_a_live_token(client: AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first pair of a new login, whose refresh token has been used, and the pair that use gave."""
    first = await login(client, (await register(client))["username"])
    response = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    return first, response.json()


def revocation(auth: AuthService, session: AsyncSession, kind: str, first: dict[str, Any]) -> Awaitable[None]:
    """Revoke the family of `first`: by presenting its used refresh token again, or by a logout naming it."""
    if kind == "reuse":
        return auth.refresh(session=session, refresh_token=first["refresh_token"])
    claims = auth.decode(first["access_token"])
    return auth.logout(session=session, claims=claims, refresh_token=first["refresh_token"])


async def assert_revoked(client: AsyncClient, *refresh_tokens: str) -> None:
    for token in refresh_tokens:
        response = await client.post(REFRESH, json={"refresh_token": token})
        assert response.status_code == 401, response.text


postgres_only = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@postgres_only
@pytest.mark.parametrize("kind", REVOCATIONS)
async def test_revocation_during_a_rotation_reaches_the_token_it_inserts(client, kind):
    first, second = await a_used_and_a_live_token(client)
    auth: AuthService = client.app.state.auth
    engine = client.app.state.database.engine
    async with held_session(client) as rotating, client.app.state.database.sessionmaker() as revoking:
        rotation = asyncio.ensure_future(auth.refresh(session=rotating, refresh_token=second["refresh_token"]))
        await rotating.reached.wait()  # second consumed, its successor inserted, nothing committed
        revoked = asyncio.ensure_future(revocation(auth, revoking, kind, first))
        await until_waiting_or_done(engine, revoked)
        rotating.released.set()
        rotated = await rotation
        outcome = (await asyncio.gather(revoked, return_exceptions=True))[0]

    assert isinstance(rotated, TokenPair)
    if kind == "reuse":
        assert isinstance(outcome, AuthenticationError)
    else:
        assert outcome is None
    # The family ended after the rotation committed, so the token the rotation made ended with it.
    await assert_revoked(client, rotated.refresh_token, second["refresh_token"], first["refresh_token"])


@postgres_only
@pytest.mark.parametrize("kind", REVOCATIONS)
async def test_rotation_during_a_revocation_is_refused(client, backend, kind):
    first, second = await a_used_and_a_live_token(client)
    auth: AuthService = client.app.state.auth
    engine = client.app.state.database.engine
    # Without Redis, logout commits the access token's revocation first, then the family's.
    pause_at = 2 if kind == "logout" and backend.redis_url is None else 1
    async with held_session(client, pause_at) as revoking, client.app.state.database.sessionmaker() as rotating:
        revoked = asyncio.ensure_future(revocation(auth, revoking, kind, first))
        await revoking.reached.wait()  # the family revoked, not committed
        rotation = asyncio.ensure_future(auth.refresh(session=rotating, refresh_token=second["refresh_token"]))
        await until_waiting_or_done(engine, rotation)
        revoking.released.set()
        outcomes = await asyncio.gather(revoked, rotation, return_exceptions=True)

    assert isinstance(outcomes[1], AuthenticationError), outcomes
    await assert_revoked(client, second["refresh_token"], first["refresh_token"])


# The race itself, through two app instances with pools of their own, as two server processes would run it. One
# race at a time: several at once crowd the one event loop and the two requests meet in the database less often.

TRIALS = 40


@asynccontextmanager
async def two_processes(app_client) -> AsyncIterator[tuple[AsyncClient, AsyncClient]]:
    async with app_client() as first, app_client() as second:
        yield first, second


async def family_outlives_revocation(rotating: AsyncClient, revoking: AsyncClient, kind: str, username: str) -> bool:
    """Rotate a new family's live token on one app while the other revokes the family: whether the family's
    newest token still rotates afterwards (it must not).
    """
    first = await login(rotating, username)
    second = (await rotating.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    if kind == "reuse":
        revoke = revoking.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    else:
        revoke = revoking.post(
            LOGOUT, json={"refresh_token": second["refresh_token"]}, headers=bearer(second["access_token"])
        )
    rotated, revoked = await asyncio.gather(
        rotating.post(REFRESH, json={"refresh_token": second["refresh_token"]}), revoke
    )
    assert revoked.status_code == (401 if kind == "reuse" else 204), revoked.text
    assert rotated.status_code in (200, 401), rotated.text
    newest = rotated.json()["refresh_token"] if rotated.status_code == 200 else second["refresh_token"]
    return (await revoking.post(REFRESH, json={"refresh_token": newest})).status_code != 401


@pytest.mark.parametrize("kind", REVOCATIONS)
async def test_racing_rotation_and_revocation_never_leave_the_family_alive(app_client, kind):
    async with two_processes(app_client) as (first, second):
        username = (await register(first))["username"]
        apps = cycle([(first, second), (second, first)])
        alive = [await family_outlives_revocation(*next(apps), kind, username) for _ in range(TRIALS)]

    assert alive.count(True) == 0
