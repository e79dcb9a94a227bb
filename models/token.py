"""Server-side token state: refresh tokens (stored only as hashes) and their families, revoked access tokens, and
the single-use tokens mailed for password resets and e-mail verification (hashes too)."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, UTCDateTime, string_enum, utcnow


def new_family_id() -> str:
    return uuid.uuid4().hex


class RefreshTokenFamily(Base):
    """The refresh tokens descended from one login; `revoked_at` ends all of them, those still to come included.

    The one place a family's revocation is kept: a rotation locks this row before it consumes a token, and a
    revocation writes it, so the two take turns instead of missing each other's uncommitted tokens.
    """

    __tablename__ = "refresh_token_families"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_family_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The user's session generation at the login: a family from before the user's sessions were ended never
    # rotates, even one whose login committed after the revocation had passed over it.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class RefreshToken(Base):
    """One refresh token, good once. Reuse of a used one revokes its family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("refresh_token_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class RevokedAccessToken(Base):
    """An access token ended by logout, kept until it would have expired anyway."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class TokenPurpose(StrEnum):
    # Purposes, not passwords, whatever the linters guess from the names.
    RESET_PASSWORD = "reset_password"  # noqa: S105  # nosec B105
    VERIFY_EMAIL = "verify_email"


class AccountToken(Base):
    """A secret mailed to the account's address: good once, until `expires_at`, and only while the account still
    has the address it was sent to (`email`)."""

    __tablename__ = "account_tokens"

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(string_enum(TokenPurpose, name="purpose_known"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
