"""database/integrity.py: the constraint an IntegrityError names, from real violations on each backend."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import Database
from database.integrity import Violation, violated_constraint
from models import Category, Order, OrderItem, Product, RefreshToken, User


@dataclass(frozen=True)
class Ids:
    category: int
    empty_category: int
    product: int
    user: int
    order: int


@pytest.fixture
async def ids(database: Database) -> Ids:
    async with database.sessionmaker() as session:
        category, empty = Category(name="Tools", slug="tools"), Category(name="Empty", slug="empty")
        user = User(username="alice", email="alice@example.com", hashed_password="x" * 60, role="user")
        session.add_all([category, empty, user])
        await session.flush()
        product = Product(name="Hammer", price=Decimal("9.99"), stock=5, category_id=category.id)
        order = Order(user_id=user.id, total=Decimal("9.99"))
        expires = datetime(2100, 1, 1, tzinfo=UTC)
        session.add_all(
            [product, order, RefreshToken(user_id=user.id, family_id="f", token_hash="h", expires_at=expires)]
        )
        await session.flush()
        session.add(OrderItem(order_id=order.id, product_id=product.id, quantity=1, price=Decimal("9.99")))
        await session.commit()
        return Ids(category.id, empty.id, product.id, user.id, order.id)


def _product(**fields: Any) -> Product:
    return Product(**{"name": "Saw", "price": Decimal("1.00"), "stock": 1, **fields})


async def _add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


async def _change(session: AsyncSession, model: type[Any], row_id: int, **values: Any) -> None:
    row = await session.get(model, row_id)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()


async def _remove(session: AsyncSession, model: type[Any], row_id: int) -> None:
    await session.delete(await session.get(model, row_id))
    await session.flush()


Write = Callable[[AsyncSession, Ids], Awaitable[None]]
FK_CATEGORY = "fk_products_category_id_categories"

# Each write breaks one constraint, as the ORM or Core would write it. Backend-specific answers are dicts.
CASES: dict[str, tuple[Write, Violation | dict[str, Violation | None] | None]] = {
    "slug, inserted": (
        lambda session, ids: _add(session, Category(name="T", slug="tools")),
        Violation("uq_categories_slug"),
    ),
    "slug, updated": (
        lambda session, ids: _change(session, Category, ids.empty_category, slug="tools"),
        Violation("uq_categories_slug"),
    ),
    "primary key": (
        lambda session, ids: _add(session, Category(id=ids.category, name="T", slug="other")),
        Violation("pk_categories"),
    ),
    "unique key of two columns": (
        lambda session, ids: _add(
            session, OrderItem(order_id=ids.order, product_id=ids.product, quantity=1, price=Decimal(1))
        ),
        Violation("uq_order_items_order_id_product_id"),
    ),
    "username, in other case": (
        lambda session, ids: _add(
            session, User(username="ALICE", email="b@example.com", hashed_password="x", role="user")
        ),
        Violation("uq_users_lower_username"),
    ),
    "email, in other case": (
        lambda session, ids: _add(
            session, User(username="bob", email="Alice@Example.COM", hashed_password="x", role="user")
        ),
        Violation("uq_users_lower_email"),
    ),
    "check, inserted": (
        lambda session, ids: _add(session, _product(stock=-1)),
        Violation("ck_products_stock_not_negative"),
    ),
    "check, updated by Core": (
        lambda session, ids: session.execute(update(Product).values(stock=Product.stock - 100)),
        Violation("ck_products_stock_not_negative"),
    ),
    "unknown category, inserted": (
        lambda session, ids: _add(session, _product(category_id=999_999)),
        Violation(FK_CATEGORY),
    ),
    "unknown category, updated": (
        lambda session, ids: _change(session, Product, ids.product, name="Mallet", category_id=999_999),
        Violation(FK_CATEGORY),
    ),
    "category in use, deleted": (
        lambda session, ids: _remove(session, Category, ids.category),
        Violation(FK_CATEGORY, still_referenced=True),
    ),
    "category in use, deleted by Core": (
        lambda session, ids: session.execute(delete(Category).where(Category.id == ids.category)),
        Violation(FK_CATEGORY, still_referenced=True),
    ),
    # No constraint has a name for it.
    "not null": (lambda session, ids: _add(session, _product(name=None)), None),
    # SQLite does not say which of the two keys of an order line failed; PostgreSQL does.
    "a row with two foreign keys": (
        lambda session, ids: _add(session, OrderItem(order_id=ids.order, product_id=999_999, quantity=1, price=1)),
        {"sqlite": None, "postgresql": Violation("fk_order_items_product_id_products")},
    ),
    # Deleting a user cascades to its tokens, whose own keys SQLite could equally be reporting.
    "a delete that cascades": (
        lambda session, ids: _remove(session, User, ids.user),
        {"sqlite": None, "postgresql": Violation("fk_orders_user_id_users", still_referenced=True)},
    ),
}


async def violation_of(database: Database, ids: Ids, write: Write) -> Violation | None:
    async with database.sessionmaker() as session:
        with pytest.raises(IntegrityError) as failed:
            await write(session, ids)
        await session.rollback()
    return violated_constraint(failed.value)


async def test_each_violation_is_named_by_its_constraint(database, ids):
    # One set-up for every case; the whole table is compared, so one wrong answer does not hide the others.
    backend = database.engine.dialect.name
    expected = {
        name: answer.get(backend) if isinstance(answer, dict) else answer for name, (_, answer) in CASES.items()
    }
    assert {name: await violation_of(database, ids, write) for name, (write, _) in CASES.items()} == expected
