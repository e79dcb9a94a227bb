"""Categories of the catalogue and their slugs."""

import re
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth.principal import Principal
from database.connection import write_transaction
from database.pagination import ListRequest, Page
from database.repositories import categories as categories_repo
from models import Category
from representations import representation
from services.access import require_active_admin
from services.errors import InvalidInputError, NotFoundError
from services.events import EventType, record_change, record_deletion, record_update, user_actor
from services.preconditions import ExpectedVersions, require_version

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


async def list_categories(*, connection: AsyncConnection, page: ListRequest) -> Page[Row[Any]]:
    return await categories_repo.list_categories(connection, page)


def _not_found(category_id: int) -> NotFoundError:
    return NotFoundError(f"Category {category_id} not found")


async def get_category(*, connection: AsyncConnection, category_id: int) -> Row[Any]:
    category = await categories_repo.read_category(connection, category_id)
    if category is None:
        raise _not_found(category_id)
    return category


async def _category_to_change(session: AsyncSession, category_id: int, expected_versions: ExpectedVersions) -> Category:
    """The category a write is about to change, locked until commit, if it is at an expected version."""
    category = await categories_repo.get_category(session, category_id, for_update=True)
    if category is None:
        raise _not_found(category_id)
    require_version(category.version, expected_versions, what=f"Category {category_id}")
    return category


async def create_category(*, session: AsyncSession, actor: Principal, name: str, slug: str | None) -> Category:
    """A taken slug is refused by its unique constraint (slug_taken); a check first would not stop a racing writer."""
    slug = _slug_for(name, slug)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        category = await categories_repo.add_category(session, name=name, slug=slug)
        record_change(session, type=EventType.CATEGORY_CREATED, resource=category, actor=user_actor(actor.id))
    return category


async def replace_category(
    *,
    session: AsyncSession,
    actor: Principal,
    category_id: int,
    name: str,
    slug: str | None,
    expected_versions: ExpectedVersions = None,
) -> Category:
    slug = _slug_for(name, slug)
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        category = await _category_to_change(session, category_id, expected_versions)
        before = representation(category)
        await categories_repo.update_category(session, category, name=name, slug=slug)
        record_update(
            session, type=EventType.CATEGORY_UPDATED, resource=category, before=before, actor=user_actor(actor.id)
        )
    return category


async def delete_category(
    *, session: AsyncSession, actor: Principal, category_id: int, expected_versions: ExpectedVersions = None
) -> None:
    """Refused while a live product uses the category (category_in_use), by the products' foreign key."""
    async with write_transaction(session):
        await require_active_admin(session, actor=actor)
        category = await _category_to_change(session, category_id, expected_versions)
        await categories_repo.delete_category(session, category)
        record_deletion(session, type=EventType.CATEGORY_DELETED, resource=category, actor=user_actor(actor.id))
