"""Products of the catalogue."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import nh3
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.principal import Principal
from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import products as products_repo
from models import Product
from representations import representation
from services.access import require_active_admin
from services.catalogue import ProductFilter
from services.errors import NotFoundError
from services.events import EventType, record_change, record_deletion, record_update, user_actor
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


async def list_products(*, connection: AsyncConnection, filters: ProductFilter, page: ListRequest) -> Page[Row[Any]]:
    return await products_repo.list_products(connection, filters, page)


def _not_found(product_id: int) -> NotFoundError:
    return NotFoundError(f"Product {product_id} not found")


async def get_product(*, connection: AsyncConnection, product_id: int) -> Row[Any]:
    product = await products_repo.read_live_product(connection, product_id)
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


def _fields(data: ProductData) -> dict[str, object]:
    return {
        "name": data.name,
        "description": sanitise_description(data.description),
        "price": data.price,
        "stock": data.stock,
        "category_id": data.category_id,
    }


async def create_product(*, session: AsyncSession, actor: Principal, data: ProductData) -> Product:
    """A category that does not exist, or no longer does, is refused by the foreign key (unknown_category)."""
    fields = _fields(data)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await products_repo.add_product(session, **fields)
        record_change(session, type=EventType.PRODUCT_CREATED, resource=product, actor=user_actor(actor.id))
    return product


async def replace_product(
    *,
    session: AsyncSession,
    actor: Principal,
    product_id: int,
    data: ProductData,
    expected_versions: ExpectedVersions = None,
) -> Product:
    fields = _fields(data)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await _product_to_change(session, product_id, expected_versions)
        before = representation(product)
        await products_repo.update_product(session, product, **fields)
        record_update(
            session, type=EventType.PRODUCT_UPDATED, resource=product, before=before, actor=user_actor(actor.id)
        )
    return product


async def delete_product(
    *, session: AsyncSession, actor: Principal, product_id: int, expected_versions: ExpectedVersions = None
) -> None:
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        product = await _product_to_change(session, product_id, expected_versions)
        await products_repo.soft_delete_product(session, product, now=datetime.now(UTC))
        record_deletion(session, type=EventType.PRODUCT_DELETED, resource=product, actor=user_actor(actor.id))
