"""SQL for refresh tokens and revoked access tokens."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from database.upsert import insert_ignoring_conflicts
from models import RefreshToken, RevokedAccessToken


@dataclass(frozen=True, slots=True)
class ConsumedRefreshToken:
    user_id: int
    family_id: str


async def add_refresh_token(
    session: AsyncSession, *, user_id: int, family_id: str, token_hash: str, expires_at: datetime
) -> None:
    session.add(RefreshToken(user_id=user_id, family_id=family_id, token_hash=token_hash, expires_at=expires_at))
    await session.flush()


async def consume_refresh_token(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> ConsumedRefreshToken | None:
    """Mark a live refresh token used, atomically: of two concurrent uses only one gets a row back."""
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(RefreshToken.user_id, RefreshToken.family_id)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else ConsumedRefreshToken(user_id=row.user_id, family_id=row.family_id)


async def find_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return (await session.scalars(select(RefreshToken).where(RefreshToken.token_hash == token_hash))).first()


async def revoke_family(session: AsyncSession, *, family_id: str, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_access_token(session: AsyncSession, *, jti: str, expires_at: datetime) -> None:
    await insert_ignoring_conflicts(session, RevokedAccessToken, {"jti": jti, "expires_at": expires_at})


async def delete_expired_tokens(session: AsyncSession, *, now: datetime) -> int:
    """Forget tokens past their expiry: an expired token is refused on its own, its row proves nothing more."""
    refresh = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
    access = await session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))
    return int(refresh.rowcount or 0) + int(access.rowcount or 0)
