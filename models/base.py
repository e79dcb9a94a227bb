"""Declarative base, naming convention and the columns and column types shared by every model."""

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from sqlalchemy import BigInteger, DateTime, Dialect, Enum, Integer, MetaData, Numeric, literal_column, text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

# Stable constraint names keep Alembic migrations readable and let repositories recognise violations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CENT = Decimal("0.01")
# Ids are INTEGER columns: 32-bit signed on PostgreSQL. The API and the tokens refuse larger ones.
MAX_ID = 2**31 - 1
IntPK = Annotated[int, mapped_column(primary_key=True)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Money(TypeDecorator[Decimal]):
    """An exact amount with two decimals.

    PostgreSQL stores NUMERIC. SQLite has no exact decimal type (NUMERIC columns hold binary floats there),
    so on SQLite the amount is kept as an integer number of cents; comparisons and ordering stay correct.
    """

    impl = Numeric(14, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(14, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | int | None:
        if value is None:
            return None
        amount = Decimal(value).quantize(CENT)
        if dialect.name == "sqlite":
            return int(amount * 100)
        return amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(CENT)
        return Decimal(value).quantize(CENT)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the offset on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def string_enum(enum: type[StrEnum], *, name: str) -> Enum:
    """A StrEnum column stored as its values in VARCHAR(16), kept to them by a CHECK constraint called `name`.

    Not a native enum type: SQLite has none, and on PostgreSQL a new value is then an ordinary change of CHECK.
    """
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


class TimestampMixin:
    """When a row was created and last changed."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VersionMixin:
    """A counter that every change of the row bumps: the resource's ETag, and the guard against lost updates.

    An ORM flush sets `version + 1` itself and writes only `WHERE version = <the version it loaded>`
    (SQLAlchemy's version_id_col: a flush over a row that changed meanwhile raises StaleDataError). Any other
    UPDATE through SQLAlchemy, such as the stock reservation, gets `version = version + 1` from `onupdate`.
    """

    version: Mapped[int] = mapped_column(
        Integer, default=1, server_default=text("1"), onupdate=literal_column("version + 1")
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - declared_attr passes the class
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
