"""SQL for categories."""

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.violations import flush_row
from models import Category, Product


async def list_categories(connection: AsyncConnection | AsyncSession, page: ListRequest) -> Page[Any]:
    """Categories as rows on a connection (entities in a session)."""
    return await fetch_page(connection, select(Category), page, Keyset.of(Category.name, Category.id))


_CATEGORY = select(Category).where(Category.id == bindparam("category_id"))


async def read_category(connection: AsyncConnection, category_id: int) -> Row[Any] | None:
    """A category as a row (no entity, no session)."""
    return (await connection.execute(_CATEGORY, {"category_id": category_id})).first()


async def get_category(session: AsyncSession, category_id: int, *, for_update: bool = False) -> Category | None:
    """A category; `for_update`: one a write is about to change, read afresh and locked until commit."""
    if not for_update:
        return await session.get(Category, category_id)
    return await session.get(Category, category_id, with_for_update={"key_share": True}, populate_existing=True)


async def add_category(session: AsyncSession, *, name: str, slug: str) -> Category:
    """A new category; a slug already taken is refused by its unique constraint (slug_taken)."""
    category = Category(name=name, slug=slug)
    session.add(category)
    await flush_row(session, category)
    return category


async def update_category(session: AsyncSession, category: Category, *, name: str, slug: str) -> Category:
    category.name = name
    category.slug = slug
    await flush_row(session, category)
    return category


async def delete_category(session: AsyncSession, category: Category) -> None:
    """Delete a category no live product uses; deleted products that named it keep no category.

    A live product still naming it, however recently added, makes the products' foreign key refuse the delete
    (category_in_use).
    """
    await session.execute(
        update(Product)
        .where(Product.category_id == category.id, Product.deleted_at.is_not(None))
        .values(category_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.delete(category)
    await flush_row(session, category)
