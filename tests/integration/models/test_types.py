"""models/base.py column types on a real database: Money stays exact and orders correctly, UTCDateTime is aware UTC,
and string enums come back as their enum, kept to its values by the database."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.roles import Role
from models import Order, OrderStatus, Product, User
from tests.conftest import Backend

HUNDRED_BILLION = Decimal("100000000000.00")


def product(price: str | Decimal = "1.00", **fields: object) -> Product:
    values: dict[str, object] = {"name": "Probe", "description": "", "price": Decimal(price), "stock": 1}
    values.update(fields)
    return Product(**values)


async def stored(session: AsyncSession, *products: Product) -> list[int]:
    session.add_all(products)
    await session.commit()
    session.expunge_all()  # so that reads come from the database, not the identity map
    return [item.id for item in products]


# Money


async def test_money_round_trips_exactly(session: AsyncSession) -> None:
    amounts = ["0.01", "0.10", "19.90", "1000000.00", "99999999999.99", str(HUNDRED_BILLION)]
    ids = await stored(session, *(product(amount) for amount in amounts))
    rows = await session.execute(select(Product.id, Product.price).where(Product.id.in_(ids)))
    read = dict(rows.all())
    prices = [read[product_id] for product_id in ids]
    assert all(isinstance(price, Decimal) for price in prices)
    assert prices == [Decimal(amount) for amount in amounts]
    assert [str(price) for price in prices] == amounts  # two decimals, no exponent, no float noise


async def test_money_storage_is_exact_on_each_backend(session: AsyncSession, backend: Backend) -> None:
    await stored(session, product(HUNDRED_BILLION))
    if backend.name == "sqlite":
        # SQLite has no exact decimal: the amount is an integer number of cents.
        kind, raw = (await session.execute(text("SELECT typeof(price), price FROM products"))).one()
        assert (kind, raw) == ("integer", 10_000_000_000_000)
    else:
        kind, raw = (await session.execute(text("SELECT pg_typeof(price)::text, price::text FROM products"))).one()
        assert (kind, raw) == ("numeric", "100000000000.00")


async def test_money_orders_and_compares_by_amount(session: AsyncSession) -> None:
    # As text, "9.99" > "10.00" and "100.00" < "20.00"; as binary floats, 0.1 + 0.2 != 0.3.
    amounts = ["10.00", "9.99", "100.00", "20.00", "0.30", "0.29", "0.31"]
    ids = dict(zip(amounts, await stored(session, *(product(amount) for amount in amounts)), strict=True))
    ascending = (await session.scalars(select(Product.price).order_by(Product.price))).all()
    assert ascending == sorted(Decimal(amount) for amount in amounts)

    async def ids_where(condition: object) -> set[int]:
        return set((await session.scalars(select(Product.id).where(condition))).all())  # type: ignore[arg-type]

    assert await ids_where(Product.price == Decimal("0.1") + Decimal("0.2")) == {ids["0.30"]}
    assert await ids_where(Product.price > Decimal("9.99")) == {ids["10.00"], ids["20.00"], ids["100.00"]}
    assert await ids_where(Product.price <= Decimal("0.30")) == {ids["0.30"], ids["0.29"]}
    assert await ids_where(Product.price.between(Decimal("0.30"), Decimal("10.00"))) == {
        ids["0.30"],
        ids["0.31"],
        ids["9.99"],
        ids["10.00"],
    }


async def test_money_sums_exactly(session: AsyncSession) -> None:
    await stored(session, *(product("0.10") for _ in range(3)), product("1000000.00"))
    total = (await session.scalars(select(func.sum(Product.price)))).one()
    assert total == Decimal("1000000.30")


# UTCDateTime


async def test_aware_datetimes_come_back_as_the_same_instant_in_utc(session: AsyncSession) -> None:
    plus_two = timezone(timedelta(hours=2))
    written = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=plus_two)
    [product_id] = await stored(session, product(created_at=written, updated_at=datetime(2026, 3, 1, tzinfo=UTC)))
    read = (await session.scalars(select(Product.created_at).where(Product.id == product_id))).one()
    assert read == written
    assert read.tzinfo is not None
    assert read.utcoffset() == timedelta(0)
    assert read.isoformat() == "2026-03-01T10:30:15.123456+00:00"


async def test_timestamps_order_by_instant_whatever_offset_they_were_written_with(session: AsyncSession) -> None:
    # 11:00 at +02:00 is 09:00 UTC: before 10:00 UTC, although its wall-clock time is later.
    later = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    earlier = datetime(2026, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    later_id, earlier_id = await stored(session, product(created_at=later), product(created_at=earlier))
    ordered = (await session.scalars(select(Product.id).order_by(Product.created_at))).all()
    assert ordered == [earlier_id, later_id]
    after_nine_thirty = select(Product.id).where(Product.created_at > datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    assert (await session.scalars(after_nine_thirty)).all() == [later_id]


async def test_default_timestamps_are_aware_utc(session: AsyncSession) -> None:
    [product_id] = await stored(session, product())
    read = (await session.execute(select(Product.created_at, Product.updated_at).where(Product.id == product_id))).one()
    for value in read:
        assert value.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - value) < timedelta(hours=1)


async def test_naive_datetimes_are_refused_and_nothing_is_stored(session: AsyncSession) -> None:
    session.add(product(created_at=datetime(2026, 3, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive"):
        await session.commit()
    await session.rollback()
    assert (await session.scalars(select(func.count()).select_from(Product))).one() == 0


# string_enum


async def add_user_with_order(session: AsyncSession, role: Role) -> None:
    user = User(username="enums", email="enums@example.com", hashed_password="x" * 60, role=role)
    session.add(user)
    await session.flush()
    session.add(Order(user_id=user.id, total=Decimal("0.00")))
    await session.commit()
    session.expunge_all()


async def test_string_enums_are_stored_as_their_values_and_read_back_as_members(session: AsyncSession) -> None:
    await add_user_with_order(session, Role.ADMIN)
    assert (await session.execute(select(User.role, Order.status).join(Order))).one() == (
        Role.ADMIN,
        OrderStatus.PENDING,
    )
    assert type((await session.scalars(select(User.role))).one()) is Role
    assert type((await session.scalars(select(Order.status))).one()) is OrderStatus
    raw = (await session.execute(text("SELECT role, status FROM users JOIN orders ON orders.user_id = users.id"))).one()
    assert tuple(raw) == ("admin", "pending")


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE users SET role = 'owner'", "ck_users_role_known"),
        ("UPDATE orders SET status = 'lost'", "ck_orders_status_known"),
    ],
)
async def test_the_database_refuses_a_value_outside_the_enum(
    session: AsyncSession, statement: str, constraint: str
) -> None:
    await add_user_with_order(session, Role.USER)
    with pytest.raises(IntegrityError, match=constraint):
        await session.execute(text(statement))
