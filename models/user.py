"""Accounts of the shop."""

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from auth.roles import Role
from models.base import Base, UTCDateTime, utcnow

ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({ROLE_VALUES})", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(320))
    hashed_password: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


# Case-insensitive uniqueness lives in the schema, so two concurrent sign-ups cannot both win.
Index("uq_users_lower_username", func.lower(User.username), unique=True)
Index("uq_users_lower_email", func.lower(User.email), unique=True)
