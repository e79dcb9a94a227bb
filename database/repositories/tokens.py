"""SQL for refresh tokens, their families, revoked access tokens, and the mailed reset and verification tokens."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from database.upsert import insert_ignoring_conflicts
from models import AccountToken, RefreshToken, RefreshTokenFamily, RevokedAccessToken, TokenPurpose


@dataclass(frozen=True, slots=True)
class ConsumedRefreshToken:
    user_id: int
    family_id: str
    generation: int
    """The session generation of the family's login."""


@dataclass(frozen=True, slots=True)
class ConsumedAccountToken:
    user_id: int
    email: str
    """The address the token was mailed to."""


async def start_family(session: AsyncSession, *, user_id: int, generation: int) -> str:
    family = RefreshTokenFamily(user_id=user_id, session_generation=generation)
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
        select(RefreshTokenFamily.session_generation)
        .join(RefreshToken, RefreshToken.family_id == RefreshTokenFamily.id)
        .where(RefreshToken.token_hash == token_hash, RefreshTokenFamily.revoked_at.is_(None))
        .with_for_update(of=RefreshTokenFamily)
    )
    family = (await session.execute(live_family)).first()
    if family is None:
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
    if row is None:
        return None
    return ConsumedRefreshToken(user_id=row.user_id, family_id=row.family_id, generation=family.session_generation)


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


async def revoke_user_families(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """End every family of the user; each waits for a rotation in flight on it, as `revoke_family` does."""
    await session.execute(
        update(RefreshTokenFamily)
        .where(RefreshTokenFamily.user_id == user_id, RefreshTokenFamily.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )


async def revoke_access_token(session: AsyncSession, *, jti: str, expires_at: datetime) -> None:
    await insert_ignoring_conflicts(session, RevokedAccessToken, {"jti": jti, "expires_at": expires_at})


async def delete_expired_tokens(session: AsyncSession, *, now: datetime) -> int:
    """Forget tokens past their expiry (mailed ones too): an expired token is refused on its own, its row proves
    nothing more.

    Families with no live token go first, their tokens with them (ON DELETE CASCADE): family rows are locked
    before token rows, in the order a rotation takes them, so the two cannot deadlock. Returns the rows removed,
    not counting the tokens that went with their family.
    """
    live_token = exists().where(RefreshToken.family_id == RefreshTokenFamily.id, RefreshToken.expires_at > now)
    families = await session.execute(delete(RefreshTokenFamily).where(~live_token))
    refresh = await session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= now))
    access = await session.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))
    mailed = await session.execute(delete(AccountToken).where(AccountToken.expires_at <= now))
    return sum(int(result.rowcount or 0) for result in (families, refresh, access, mailed))


async def add_account_token(
    session: AsyncSession, *, user_id: int, purpose: TokenPurpose, token_hash: str, email: str, expires_at: datetime
) -> None:
    session.add(
        AccountToken(user_id=user_id, purpose=purpose, token_hash=token_hash, email=email, expires_at=expires_at)
    )
    await session.flush()


async def account_tokens_issued_since(
    session: AsyncSession, *, user_id: int, purpose: TokenPurpose, since: datetime
) -> list[datetime]:
    """When the user's tokens of `purpose` issued after `since` were issued, oldest first."""
    query = (
        select(AccountToken.created_at)
        .where(AccountToken.user_id == user_id, AccountToken.purpose == purpose, AccountToken.created_at > since)
        .order_by(AccountToken.created_at)
    )
    return list((await session.scalars(query)).all())


def _live_account_token(token_hash: str, purpose: TokenPurpose, now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        AccountToken.token_hash == token_hash,
        AccountToken.purpose == purpose,
        AccountToken.expires_at > now,
    )


async def is_live_account_token(
    session: AsyncSession, *, token_hash: str, purpose: TokenPurpose, now: datetime
) -> bool:
    query = select(AccountToken.id).where(*_live_account_token(token_hash, purpose, now))
    return (await session.scalar(query)) is not None


async def consume_account_token(
    session: AsyncSession, *, token_hash: str, purpose: TokenPurpose, now: datetime
) -> ConsumedAccountToken | None:
    """Take a live token out, atomically: of two concurrent uses only one gets it (the other waits, then finds none)."""
    statement = (
        delete(AccountToken)
        .where(*_live_account_token(token_hash, purpose, now))
        .returning(AccountToken.user_id, AccountToken.email)
        .execution_options(synchronize_session=False)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else ConsumedAccountToken(user_id=row.user_id, email=row.email)


async def delete_account_tokens(session: AsyncSession, *, user_id: int, purpose: TokenPurpose | None = None) -> None:
    """Void the user's outstanding tokens (of one purpose, or all)."""
    statement = delete(AccountToken).where(AccountToken.user_id == user_id)
    if purpose is not None:
        statement = statement.where(AccountToken.purpose == purpose)
    await session.execute(statement.execution_options(synchronize_session=False))
