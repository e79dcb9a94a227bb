"""Products of the catalogue."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import nh3
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import categories as categories_repo
from database.repositories import products as products_repo
from database.repositories.products import ProductFilter
from models import Product, User
from services.access import require_active_admin
from services.errors import NotFoundError, UnknownReferenceError


@dataclass(frozen=True, slots=True)
class ProductData:
    name: str
    description: str
    price: Decimal
    stock: int
    category_id: int | None


def sanitise_description(text: str) -> str:
    """Keep harmless formatting; drop scripts, event handlers and `javascript:` URLs (nh3's allow-list)."""
    return nh3.clean(text)


def _unknown_category(category_id: int | None) -> UnknownReferenceError:
    return UnknownReferenceError(f"Category {category_id} does not exist", code="unknown_category")


async def list_products(*, session: AsyncSession, filters: ProductFilter, page: ListRequest) -> Page[Product]:
    return await products_repo.list_products(session, filters, page)


async def get_product(*, session: AsyncSession, product_id: int) -> Product:
    product = await products_repo.get_live_product(session, product_id)
    if product is None:
        raise NotFoundError(f"Product {product_id} not found")
    return product


async def _check_category(session: AsyncSession, category_id: int | None) -> None:
    if category_id is not None and not await categories_repo.category_exists(session, category_id):
        raise _unknown_category(category_id)


def _fields(data: ProductData) -> dict[str, object]:
    return {
        "name": data.name,
        "description": sanitise_description(data.description),
        "price": data.price,
        "stock": data.stock,
        "category_id": data.category_id,
    }


async def create_product(*, session: AsyncSession, actor: User, data: ProductData) -> Product:
    fields = _fields(data)
    try:
        async with write_transaction(session):
            await require_active_admin(session, actor=actor)
            await _check_category(session, data.category_id)
            return await products_repo.add_product(session, **fields)
    except IntegrityError:
        # The category was deleted between our check and our insert.
        raise _unknown_category(data.category_id) from None


async def replace_product(*, session: AsyncSession, actor: User, product_id: int, data: ProductData) -> Product:
    fields = _fields(data)
    try:
        async with write_transaction(session):
            await require_active_admin(session, actor=actor)
            product = await get_product(session=session, product_id=product_id)
            await _check_category(session, data.category_id)
            for name, value in fields.items():
                setattr(product, name, value)
            await session.flush()
            return product
    except IntegrityError:
        raise _unknown_category(data.category_id) from None


async def delete_product(*, session: AsyncSession, actor: User, product_id: int) -> None:
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await get_product(session=session, product_id=product_id)
        await products_repo.soft_delete_product(session, product, now=datetime.now(UTC))
