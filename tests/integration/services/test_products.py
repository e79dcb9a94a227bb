"""services/products.py: a product's category is checked by the database alone, even when it goes meanwhile.

Each category is deleted past every check the service makes (see write_first), so only the foreign key and its
entry in database/violations.py can refuse the write; a constraint without an entry is never mislabelled.
"""

from decimal import Decimal

import pytest
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import Database, write_transaction
from database.integrity import Violation, violated_constraint
from database.repositories import categories as categories_repo
from database.repositories import products as products_repo
from models import Category, Product
from services import products as products_service
from services.errors import UnknownReferenceError
from services.products import ProductData
from tests.helpers import write_first


def product_data(category_id: int | None, *, stock: int = 1) -> ProductData:
    return ProductData(name="Rake", description="", price=Decimal("9.99"), stock=stock, category_id=category_id)


async def add_category(database: Database, slug: str) -> int:
    async with database.sessionmaker() as session, write_transaction(session):
        return (await categories_repo.add_category(session, name=slug.title(), slug=slug)).id


async def products(database: Database) -> list[tuple[object, ...]]:
    async with database.sessionmaker() as session:
        query = select(Product.id, Product.name, Product.category_id).order_by(Product.id)
        return [tuple(row) for row in (await session.execute(query)).all()]


def category_deleted(category_id: int):
    async def write(session: AsyncSession) -> None:
        await session.execute(delete(Category).where(Category.id == category_id))

    return write


async def test_category_deleted_just_before_create_is_unknown(database, admin, monkeypatch):
    category_id = await add_category(database, "garden")
    write_first(monkeypatch, products_repo, "add_product", category_deleted(category_id))
    async with database.sessionmaker() as session:
        with pytest.raises(UnknownReferenceError) as refused:
            await products_service.create_product(session=session, actor=admin, data=product_data(category_id))
    assert (refused.value.code, refused.value.detail) == ("unknown_category", f"Category {category_id} does not exist")
    assert await products(database) == []


async def test_category_deleted_just_before_replace_is_unknown(database, admin, monkeypatch):
    category_id = await add_category(database, "garden")
    async with database.sessionmaker() as session:
        product = await products_service.create_product(session=session, actor=admin, data=product_data(None))
    before = await products(database)
    write_first(monkeypatch, products_repo, "update_product", category_deleted(category_id))
    async with database.sessionmaker() as session:
        with pytest.raises(UnknownReferenceError) as refused:
            await products_service.replace_product(
                session=session, actor=admin, product_id=product.id, data=product_data(category_id)
            )
    assert (refused.value.code, refused.value.detail) == ("unknown_category", f"Category {category_id} does not exist")
    assert await products(database) == before


async def test_a_constraint_without_a_domain_error_goes_on_as_itself(database, admin):
    # The schema refuses negative stock before the service is reached; called straight, the check constraint must
    # surface as what it is (a 500 through the API), not as some conflict.
    async with database.sessionmaker() as session:
        with pytest.raises(IntegrityError) as failed:
            await products_service.create_product(session=session, actor=admin, data=product_data(None, stock=-1))
    assert violated_constraint(failed.value) == Violation("ck_products_stock_not_negative")
    assert await products(database) == []
