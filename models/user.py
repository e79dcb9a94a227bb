"""Accounts of the shop."""

from sqlalchemy import Boolean, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from auth.roles import Role
from models.base import Base, IntPK, TimestampMixin, VersionMixin, string_enum


class User(VersionMixin, TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[IntPK]
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    hashed_password: Mapped[str] = mapped_column(String(60))
    role: Mapped[Role] = mapped_column(string_enum(Role, name="role_known"), default=Role.USER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


# Case-insensitive uniqueness lives in the schema, so two concurrent sign-ups cannot both win.
Index("uq_users_lower_username", func.lower(User.username), unique=True)
Index("uq_users_lower_email", func.lower(User.email), unique=True)
