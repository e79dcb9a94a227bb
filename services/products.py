"""Products of the catalogue."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import nh3
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import products as products_repo
from models import Product, User
from services.access import require_active_admin
from services.catalogue import ProductFilter
from services.errors import NotFoundError


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


async def list_products(*, session: AsyncSession, filters: ProductFilter, page: ListRequest) -> Page[Product]:
    return await products_repo.list_products(session, filters, page)


async def get_product(*, session: AsyncSession, product_id: int) -> Product:
    product = await products_repo.get_live_product(session, product_id)
    if product is None:
        raise NotFoundError(f"Product {product_id} not found")
    return product


def _fields(data: ProductData) -> dict[str, object]:
    return {
        "name": data.name,
        "description": sanitise_description(data.description),
        "price": data.price,
        "stock": data.stock,
        "category_id": data.category_id,
    }


async def create_product(*, session: AsyncSession, actor: User, data: ProductData) -> Product:
    """A category that does not exist, or no longer does, is refused by the foreign key (unknown_category)."""
    fields = _fields(data)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        return await products_repo.add_product(session, **fields)


async def replace_product(*, session: AsyncSession, actor: User, product_id: int, data: ProductData) -> Product:
    fields = _fields(data)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await get_product(session=session, product_id=product_id)
        return await products_repo.update_product(session, product, **fields)


async def delete_product(*, session: AsyncSession, actor: User, product_id: int) -> None:
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await get_product(session=session, product_id=product_id)
        await products_repo.soft_delete_product(session, product, now=datetime.now(UTC))
