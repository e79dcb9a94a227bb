"""Accounts of the shop."""

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, false, func, text
from sqlalchemy.orm import Mapped, mapped_column

from auth.roles import Role
from models.base import Base, IntPK, TimestampMixin, UTCDateTime, VersionMixin, string_enum


class User(VersionMixin, TimestampMixin, Base):
    """An account. Erasing one keeps the row, so that its orders keep their `user_id`, but nothing personal in it.

    `session_generation` counts the times every session of the account was ended (password change or reset,
    signing out everywhere, erasure): access tokens and refresh families carry the generation they were issued
    in, and only the current one is accepted.
    """

    __tablename__ = "users"

    id: Mapped[IntPK]
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    hashed_password: Mapped[str] = mapped_column(String(60))
    role: Mapped[Role] = mapped_column(string_enum(Role, name="role_known"), default=Role.USER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


# Case-insensitive uniqueness lives in the schema, so two concurrent sign-ups cannot both win.
Index("uq_users_lower_username", func.lower(User.username), unique=True)
Index("uq_users_lower_email", func.lower(User.email), unique=True)
