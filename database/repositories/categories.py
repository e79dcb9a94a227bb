"""SQL for categories."""

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from database.pagination import Page, PageRequest, fetch_page
from models import Category, Product


async def list_categories(session: AsyncSession, page: PageRequest) -> Page[Category]:
    return await fetch_page(session, select(Category).order_by(Category.name, Category.id), page)


async def get_category(session: AsyncSession, category_id: int, *, for_update: bool = False) -> Category | None:
    """A category; `for_update`: one a write is about to change, read afresh and locked until commit."""
    if not for_update:
        return await session.get(Category, category_id)
    return await session.get(Category, category_id, with_for_update={"key_share": True}, populate_existing=True)


async def category_exists(session: AsyncSession, category_id: int) -> bool:
    return bool((await session.execute(select(exists().where(Category.id == category_id)))).scalar())


async def slug_taken(session: AsyncSession, slug: str, *, except_id: int | None = None) -> bool:
    condition = Category.slug == slug
    if except_id is not None:
        condition = condition & (Category.id != except_id)
    return bool((await session.execute(select(exists().where(condition)))).scalar())


async def add_category(session: AsyncSession, *, name: str, slug: str) -> Category:
    category = Category(name=name, slug=slug)
    session.add(category)
    await session.flush()
    return category


async def has_live_products(session: AsyncSession, category_id: int) -> bool:
    query = select(exists().where(Product.category_id == category_id, Product.deleted_at.is_(None)))
    return bool((await session.execute(query)).scalar())


async def delete_category(session: AsyncSession, category: Category) -> None:
    """Delete a category no live product uses; deleted products that named it keep no category."""
    await session.execute(
        update(Product)
        .where(Product.category_id == category.id, Product.deleted_at.is_not(None))
        .values(category_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.delete(category)
    await session.flush()
