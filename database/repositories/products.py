"""SQL for products, including the atomic stock reservation orders rely on."""

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from database.functions import casefold, escape_like
from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.violations import flush_row
from models import Product
from services.catalogue import ProductFilter

# The catalogue's sort keys, mapped to columns: user input never becomes SQL text.
SORT_COLUMNS = {
    "id": Product.id,
    "name": Product.name,
    "price": Product.price,
    "created_at": Product.created_at,
}


def _conditions(filters: ProductFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Product.deleted_at.is_(None)]
    if filters.category_id is not None:
        conditions.append(Product.category_id == filters.category_id)
    if filters.q:
        pattern = f"%{escape_like(filters.q.lower())}%"
        conditions.append(casefold(Product.name).like(pattern, escape="\\"))
    if filters.min_price is not None:
        conditions.append(Product.price >= filters.min_price)
    if filters.max_price is not None:
        conditions.append(Product.price <= filters.max_price)
    if filters.in_stock is True:
        conditions.append(Product.stock > 0)
    elif filters.in_stock is False:
        conditions.append(Product.stock == 0)
    return conditions


async def list_products(
    connection: AsyncConnection | AsyncSession, filters: ProductFilter, page: ListRequest
) -> Page[Any]:
    """Products as rows on a connection (entities in a session), each with every column of the table."""
    order = Keyset.of(SORT_COLUMNS[filters.sort_key], Product.id, descending=filters.descending)
    return await fetch_page(connection, select(Product).where(*_conditions(filters)), page, order)


# Built once for the hottest read: the statement object and its compile cache key are not made per request.
_LIVE_PRODUCT = select(Product).where(Product.id == bindparam("product_id"), Product.deleted_at.is_(None))


async def read_live_product(connection: AsyncConnection, product_id: int) -> Row[Any] | None:
    """A product that is not deleted, as a row with every column of the table (no entity, no session)."""
    return (await connection.execute(_LIVE_PRODUCT, {"product_id": product_id})).first()


async def get_live_product(session: AsyncSession, product_id: int, *, for_update: bool = False) -> Product | None:
    """A product that is not deleted.

    `for_update`: the row a write is about to change, read afresh and locked until commit, so that its version
    cannot move between the read and the write. (FOR NO KEY UPDATE: order items' foreign-key locks pass.)
    """
    query = select(Product).where(Product.id == product_id, Product.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def live_product_ids(session: AsyncSession, product_ids: Iterable[int]) -> set[int]:
    query = select(Product.id).where(Product.id.in_(list(product_ids)), Product.deleted_at.is_(None))
    return set((await session.scalars(query)).all())


async def add_product(session: AsyncSession, **fields: Any) -> Product:
    """A new product; a category that does not exist is refused by the foreign key (unknown_category)."""
    product = Product(**fields)
    session.add(product)
    await flush_row(session, product)
    return product


async def update_product(session: AsyncSession, product: Product, **fields: Any) -> Product:
    for name, value in fields.items():
        setattr(product, name, value)
    await flush_row(session, product)
    return product


async def reserve_stock(session: AsyncSession, *, product_id: int, quantity: int) -> Decimal | None:
    """Take `quantity` off the stock if that much is there, returning the unit price at that moment.

    One conditional UPDATE: the database's row lock makes check and decrement a single step, on any number of
    processes, so stock can never be oversold or go negative. Like every UPDATE of a product, it bumps the
    version (the column's onupdate): the product's ETag changes with its stock.
    """
    statement = (
        update(Product)
        .where(Product.id == product_id, Product.deleted_at.is_(None), Product.stock >= quantity)
        .values(stock=Product.stock - quantity)
        .returning(Product.price)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def restore_stock(session: AsyncSession, lines: Sequence[tuple[int, int]]) -> None:
    """Put (product_id, quantity) back on the shelf, in product order so concurrent restores cannot deadlock.

    Each UPDATE bumps the product's version, as reserve_stock does.
    """
    for product_id, quantity in sorted(lines):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock + quantity)
            .execution_options(synchronize_session=False)
        )


async def soft_delete_product(session: AsyncSession, product: Product, *, now: datetime) -> None:
    product.deleted_at = now
    await session.flush()


def _unchanged(value: Any) -> Any:
    return value


async def bulk_insert_products(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many products (all rows naming the same columns) with one INSERT ... SELECT, however many rows.

    The rows travel as one array per column (PostgreSQL's unnest) or as one JSON document (SQLite's json_each),
    so the database runs a single statement with a handful of parameters. executemany would run the INSERT once
    per row, and a multi-row VALUES costs a fresh compilation per call and meets the drivers' parameter limits.
    Columns the rows leave out get their model defaults.
    """
    if not rows:
        return
    names = list(rows[0])
    columns = [Product.__table__.c[name] for name in names]
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        arrays = [
            bindparam(f"bulk_{name}", [row[name] for row in rows], type_=ARRAY(column.type))
            for name, column in zip(names, columns, strict=True)
        ]
        source = func.unnest(*arrays).table_valued(*names).render_derived()
        values = select(*(source.c[name] for name in names))
    else:
        # Each value is stored as its column type would bind it (Money as cents, timestamps as text).
        processors = [column.type.bind_processor(dialect) or _unchanged for column in columns]
        document = [[process(row[name]) for name, process in zip(names, processors, strict=True)] for row in rows]
        source = func.json_each(bindparam("bulk_rows", json.dumps(document))).table_valued("value")
        values = select(*(func.json_extract(source.c.value, f"$[{index}]") for index in range(len(names))))
    await session.execute(insert(Product).from_select(names, values, include_defaults=True))
