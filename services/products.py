"""Products of the catalogue."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import nh3
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.pagination import Page, PageRequest
from database.repositories import categories as categories_repo
from database.repositories import products as products_repo
from database.repositories.products import ProductFilter
from models import Product, User
from services.access import require_active_admin
from services.errors import NotFoundError, UnknownReferenceError
from services.preconditions import ExpectedVersions, require_version


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


async def list_products(*, session: AsyncSession, filters: ProductFilter, page: PageRequest) -> Page[Product]:
    return await products_repo.list_products(session, filters, page)


def _not_found(product_id: int) -> NotFoundError:
    return NotFoundError(f"Product {product_id} not found")


async def get_product(*, session: AsyncSession, product_id: int) -> Product:
    product = await products_repo.get_live_product(session, product_id)
    if product is None:
        raise _not_found(product_id)
    return product


async def _product_to_change(session: AsyncSession, product_id: int, expected_versions: ExpectedVersions) -> Product:
    """The live product a write is about to change, locked until commit, if it is at an expected version."""
    product = await products_repo.get_live_product(session, product_id, for_update=True)
    if product is None:
        raise _not_found(product_id)
    require_version(product.version, expected_versions, what=f"Product {product_id}")
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


async def replace_product(
    *,
    session: AsyncSession,
    actor: User,
    product_id: int,
    data: ProductData,
    expected_versions: ExpectedVersions = None,
) -> Product:
    fields = _fields(data)
    try:
        async with write_transaction(session):
            await require_active_admin(session, actor=actor)
            product = await _product_to_change(session, product_id, expected_versions)
            await _check_category(session, data.category_id)
            for name, value in fields.items():
                setattr(product, name, value)
            await session.flush()
            return product
    except IntegrityError:
        raise _unknown_category(data.category_id) from None


async def delete_product(
    *, session: AsyncSession, actor: User, product_id: int, expected_versions: ExpectedVersions = None
) -> None:
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await _product_to_change(session, product_id, expected_versions)
        await products_repo.soft_delete_product(session, product, now=datetime.now(UTC))
