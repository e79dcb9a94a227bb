"""Categories of the catalogue and their slugs."""

import re

from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import categories as categories_repo
from models import Category, User
from services.access import require_active_admin
from services.errors import InvalidInputError, NotFoundError

_NOT_SLUG_CHARACTERS = re.compile(r"[^A-Za-z0-9]+")


def derive_slug(name: str) -> str:
    """The contract's rule, exactly: ASCII letters and digits, lower-cased; every other run becomes one `-`.

    Written by hand rather than with python-slugify, which transliterates (`é` → `e`) where the rule drops.
    """
    # Lower-case after dropping: str.lower() turns some non-ASCII letters (İ, the Kelvin sign) into ASCII ones.
    return _NOT_SLUG_CHARACTERS.sub("-", name).strip("-").lower()


def _slug_for(name: str, slug: str | None) -> str:
    chosen = slug if slug is not None else derive_slug(name)
    if not chosen:
        raise InvalidInputError(
            "No slug can be derived from this name (it has no ASCII letters or digits); give one",
            field="slug",
            code="slug_underivable",
        )
    return chosen


async def list_categories(*, session: AsyncSession, page: ListRequest) -> Page[Category]:
    return await categories_repo.list_categories(session, page)


async def get_category(*, session: AsyncSession, category_id: int) -> Category:
    category = await categories_repo.get_category(session, category_id)
    if category is None:
        raise NotFoundError(f"Category {category_id} not found")
    return category


async def create_category(*, session: AsyncSession, actor: User, name: str, slug: str | None) -> Category:
    """A taken slug is refused by its unique constraint (slug_taken); a check first would not stop a racing writer."""
    slug = _slug_for(name, slug)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        return await categories_repo.add_category(session, name=name, slug=slug)


async def replace_category(
    *, session: AsyncSession, actor: User, category_id: int, name: str, slug: str | None
) -> Category:
    slug = _slug_for(name, slug)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        category = await get_category(session=session, category_id=category_id)
        return await categories_repo.update_category(session, category, name=name, slug=slug)


async def delete_category(*, session: AsyncSession, actor: User, category_id: int) -> None:
    """Refused while a live product uses the category (category_in_use), by the products' foreign key."""
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        category = await get_category(session=session, category_id=category_id)
        await categories_repo.delete_category(session, category)
