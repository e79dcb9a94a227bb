"""database/integrity.py: the constraint an IntegrityError names, from real violations on each backend."""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
    delete,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import Database
from database.integrity import Violation, violated_constraint
from models import Category, Order, OrderItem, Product, RefreshToken, RefreshTokenFamily, User


@dataclass(frozen=True)
class Ids:
    category: int
    empty_category: int
    product: int
    user: int
    order: int
    order_item: int


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
        session.add_all([product, order, RefreshTokenFamily(id="f", user_id=user.id)])
        await session.flush()
        session.add(RefreshToken(user_id=user.id, family_id="f", token_hash="h", expires_at=expires))
        await session.flush()
        item = OrderItem(order_id=order.id, product_id=product.id, quantity=1, price=Decimal("9.99"))
        session.add(item)
        await session.commit()
        return Ids(category.id, empty.id, product.id, user.id, order.id, item.id)


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
    # Only the key whose column the UPDATE assigns can have failed.
    "a row with two foreign keys, one updated": (
        lambda session, ids: _change(session, OrderItem, ids.order_item, product_id=999_999),
        Violation("fk_order_items_product_id_products"),
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


# What the shop's schema has no case of: a small schema of its own (made here with create_all, as it is no part
# of the shop's), in which SQLite's answer would fit more than one constraint.
SYNTHETIC = MetaData()
Table(
    "integrity_parents",
    SYNTHETIC,
    Column("id", Integer, primary_key=True),
    Column("code", Integer),
    Column("active", Boolean),
    # Two unique keys on one column, and a check without a name, which SQLite reports by its expression.
    UniqueConstraint("code", name="uq_integrity_parents_code"),
    Index("ix_integrity_parents_code", "code", unique=True),
    CheckConstraint("active"),
)
Table(
    "integrity_children",
    SYNTHETIC,
    Column("id", Integer, primary_key=True),
    Column("parent_id", ForeignKey("integrity_parents.id", ondelete="CASCADE", name="fk_children_parent")),
)
Table(
    "integrity_grandchildren",
    SYNTHETIC,
    Column("id", Integer, primary_key=True),
    Column("child_id", ForeignKey("integrity_children.id", ondelete="RESTRICT", name="fk_grandchildren_child")),
)

SYNTHETIC_CASES: dict[str, tuple[str, Violation | dict[str, Violation | None] | None]] = {
    # The parent's delete cascades to its child, and the grandchild's key refuses that: neither key of the table
    # deleted from, though SQLite's message would fit the child's.
    "a key broken down a cascade": ("DELETE FROM integrity_parents WHERE id = 1", None),
    "a column with two unique keys": (
        "INSERT INTO integrity_parents (id, code) VALUES (2, 7)",
        {"sqlite": None, "postgresql": Violation("uq_integrity_parents_code")},
    ),
    "a check without a name": (
        "INSERT INTO integrity_parents (id, code, active) VALUES (2, 8, false)",
        {"sqlite": None, "postgresql": Violation("integrity_parents_active_check")},
    ),
}


@pytest.fixture
async def synthetic(database: Database) -> AsyncIterator[None]:
    async with database.engine.begin() as connection:
        await connection.run_sync(SYNTHETIC.create_all)
        for statement in (
            "INSERT INTO integrity_parents (id, code, active) VALUES (1, 7, true)",
            "INSERT INTO integrity_children (id, parent_id) VALUES (1, 1)",
            "INSERT INTO integrity_grandchildren (id, child_id) VALUES (1, 1)",
        ):
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with database.engine.begin() as connection:
            await connection.run_sync(SYNTHETIC.drop_all)


async def test_what_could_be_more_than_one_constraint_is_not_named(database, synthetic):
    backend = database.engine.dialect.name
    answers = {}
    for name, (statement, _) in SYNTHETIC_CASES.items():
        async with database.engine.connect() as connection:
            with pytest.raises(IntegrityError) as failed:
                await connection.execute(text(statement))
        answers[name] = violated_constraint(failed.value, SYNTHETIC)
    expected = {
        name: answer.get(backend) if isinstance(answer, dict) else answer
        for name, (_, answer) in SYNTHETIC_CASES.items()
    }
    assert answers == expected
