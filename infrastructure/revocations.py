"""Where revoked access tokens are remembered: the database by default, Redis when one is configured."""

from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.principal import Principal
from database.connection import write_transaction
from database.repositories import tokens as tokens_repo
from database.repositories import users as users_repo
from models import User
from services.errors import ServiceUnavailableError

REDIS_KEY_PREFIX = "shop:revoked-access:"


def revocation_key(jti: str) -> str:
    """The Redis key that marks the access token `jti` revoked (the rate limiter checks it in the same call)."""
    return REDIS_KEY_PREFIX + jti


class RevocationStore(Protocol):
    async def revoke(self, *, session: AsyncSession, jti: str, expires_at: datetime) -> None: ...

    async def load_user(self, *, session: AsyncSession, user_id: int, jti: str) -> tuple[User | None, bool]:
        """The token's user and whether the token was revoked."""
        ...

    async def load_principal(
        self, *, connection: AsyncConnection, user_id: int, jti: str
    ) -> tuple[Principal | None, bool]:
        """The token's principal and whether the token was revoked."""
        ...


class DatabaseRevocationStore:
    async def revoke(self, *, session: AsyncSession, jti: str, expires_at: datetime) -> None:
        async with write_transaction(session):
            await tokens_repo.revoke_access_token(session, jti=jti, expires_at=expires_at)

    async def load_user(self, *, session: AsyncSession, user_id: int, jti: str) -> tuple[User | None, bool]:
        return await users_repo.get_user_unless_revoked(session, user_id=user_id, jti=jti)

    async def load_principal(
        self, *, connection: AsyncConnection, user_id: int, jti: str
    ) -> tuple[Principal | None, bool]:
        return await users_repo.get_principal_unless_revoked(connection, user_id=user_id, jti=jti)


def _redis_unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("Token revocations cannot be checked right now; try again shortly")


class RedisRevocationStore:
    """Revocations as keys that expire with the token, shared by every process using this Redis.

    Unlike rate limits, these fail closed: a revoked token must not work again because Redis is down.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def revoke(self, *, session: AsyncSession, jti: str, expires_at: datetime) -> None:
        seconds_left = int((expires_at - datetime.now(UTC)).total_seconds()) + 1
        if seconds_left > 0:
            try:
                await self._redis.set(revocation_key(jti), b"1", ex=seconds_left)
            except RedisError as error:
                raise _redis_unavailable() from error

    async def _revoked(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(revocation_key(jti)))
        except RedisError as error:
            raise _redis_unavailable() from error

    async def load_user(self, *, session: AsyncSession, user_id: int, jti: str) -> tuple[User | None, bool]:
        if await self._revoked(jti):
            return None, True
        return await users_repo.get_user(session, user_id), False

    async def load_principal(
        self, *, connection: AsyncConnection, user_id: int, jti: str
    ) -> tuple[Principal | None, bool]:
        if await self._revoked(jti):
            return None, True
        return await users_repo.get_principal(connection, user_id), False
