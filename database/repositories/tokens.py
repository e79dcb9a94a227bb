"""SQL for refresh tokens, their families, and revoked access tokens."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from database.upsert import insert_ignoring_conflicts
from models import RefreshToken, RefreshTokenFamily, RevokedAccessToken


@dataclass(frozen=True, slots=True)
class ConsumedRefreshToken:
    user_id: int
    family_id: str


async def start_family(session: AsyncSession, *, user_id: int) -> str:
    family = RefreshTokenFamily(user_id=user_id)
    session.add(family)
    await session.flush()
    return family.id


async def add_refresh_token(
    session: AsyncSession, *, user_id: int, family_id: str, token_hash: str, expires_at: datetime
) -> None:
    session.add(RefreshToken(user_id=user_id, family_id=family_id, token_hash=token_hash, expires_at=expires_at))
    await session.flush()


async def consume_refresh_token(
    session: AsyncSession, *, token_hash: str, now: datetime
) -> ConsumedRefreshToken | None:
    """Mark a live refresh token of a live family used, atomically: of two concurrent uses only one gets a row back.

    The family's row is locked first and held until commit. A revocation of the family waits for this rotation to
    commit, then ends the token it made as well; a rotation behind a revocation finds the family revoked. (SQLite
    has no FOR UPDATE and needs none: write transactions there run one at a time.)
    """
    live_family = (
        select(RefreshTokenFamily.id)
        .join(RefreshToken, RefreshToken.family_id == RefreshTokenFamily.id)
        .where(RefreshToken.token_hash == token_hash, RefreshTokenFamily.revoked_at.is_(None))
        .with_for_update(of=RefreshTokenFamily)
    )
    if (await session.execute(live_family)).first() is None:
        return None
    statement = (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.used_at.is_(None),
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
    """End the family: every token of it, and any a rotation in flight is adding (this waits for its row lock)."""
    await session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.id == family_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_access_token(session: AsyncSession, *, jti: str, expires_at: datetime) -> None:
    await insert_ignoring_conflicts(session, RevokedAccessToken, {"jti": jti, "expires_at": expires_at})


async def delete_expired_tokens(session: AsyncSession, *, now: datetime) -> int:
    """Forget tokens past their expiry: an expired token is refused on its own, its row proves nothing more.

    Families with no live token go first, their tokens with them (ON DELETE CASCADE): family rows are locked
    before token rows, in the order a rotation takes them, so the two cannot deadlock. Returns the rows removed,
    not counting the tokens that went with their family.
    """
    live_token = exists().where(RefreshToken.family_id == RefreshTokenFamily.id, RefreshToken.expires_at > now)
    families = await session.execute(delete(RefreshTokenFamily).where(~live_token))
    refresh = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
    access = await session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))
    return sum(int(result.rowcount or 0) for result in (families, refresh, access))
