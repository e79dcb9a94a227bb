"""SQL for categories."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from database.pagination import Keyset, ListRequest, Page, fetch_page
from database.violations import flush_row
from models import Category, Product


async def list_categories(session: AsyncSession, page: ListRequest) -> Page[Category]:
    return await fetch_page(session, select(Category), page, Keyset.of(Category.name, Category.id))


async def get_category(session: AsyncSession, category_id: int) -> Category | None:
    return await session.get(Category, category_id)


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
