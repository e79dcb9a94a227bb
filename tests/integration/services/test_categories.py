"""services/categories.py: the contract's rule for deriving a slug from a category name, and its conflicts.

Each conflict is forced past every check the service makes (see write_first), so only the database's constraint
and its entry in database/violations.py can refuse it.
"""

import re
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from database.connection import Database, write_transaction
from database.repositories import categories as categories_repo
from models import Category, Product
from services import categories as categories_service
from services.categories import derive_slug
from services.errors import ConflictError
from tests.helpers import write_first

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Garden Tools & More", "garden-tools-more"),
        ("Tools", "tools"),
        ("  Leading and trailing  ", "leading-and-trailing"),
        ("--Dashes--Inside--", "dashes-inside"),
        ("a___b...c", "a-b-c"),
        ("Kids' Toys (3+)", "kids-toys-3"),
        ("Model 2024", "model-2024"),
        ("already-a-slug", "already-a-slug"),
        ("UPPER lower MiXeD", "upper-lower-mixed"),
        # Non-ASCII letters are "other characters": dropped like punctuation, not transliterated.
        ("Äpfel & Birnen", "pfel-birnen"),
        ("Café Crème", "caf-cr-me"),
        ("Straße", "stra-e"),
        ("日本 Tea", "tea"),
        ("ＡＢＣ", ""),  # full-width letters are not ASCII either
        ("İstanbul", "stanbul"),  # İ lower-cases to an ASCII i plus a combining dot, but İ itself is not ASCII
        ("\u212a2", "2"),  # the Kelvin sign lower-cases to an ASCII k, but is not ASCII itself
        ("!!!", ""),
        ("", ""),
    ],
)
def test_derive_slug(name: str, slug: str) -> None:
    assert derive_slug(name) == slug


@given(st.text())
def test_derived_slug_is_valid_or_empty_and_idempotent(name: str) -> None:
    slug = derive_slug(name)
    assert slug == "" or SLUG.fullmatch(slug)
    assert derive_slug(slug) == slug


@given(st.text())
@example("\u0130\u212a")  # both lower-case to ASCII letters; rare enough that random text seldom has them
def test_derived_slug_keeps_exactly_the_ascii_letters_and_digits_in_order(name: str) -> None:
    kept = "".join(character.lower() for character in name if character.isascii() and character.isalnum())
    assert derive_slug(name).replace("-", "") == kept


# Conflicts


async def add_category(database: Database, name: str, slug: str) -> int:
    async with database.sessionmaker() as session, write_transaction(session):
        return (await categories_repo.add_category(session, name=name, slug=slug)).id


async def catalogue(database: Database) -> list[tuple[object, ...]]:
    async with database.sessionmaker() as session:
        categories = (await session.execute(select(Category.id, Category.name, Category.slug))).all()
        products = (await session.execute(select(Product.id))).all()
    return [tuple(row) for row in [*categories, *products]]


def racing_category(slug: str):
    async def write(session: AsyncSession) -> None:
        await session.execute(insert(Category).values(name="Racer", slug=slug))

    return write


async def test_slug_taken_just_before_create_is_refused(database, admin, monkeypatch):
    write_first(monkeypatch, categories_repo, "add_category", racing_category("garden-tools"))
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await categories_service.create_category(session=session, actor=admin, name="Garden Tools", slug=None)
    assert (refused.value.code, refused.value.detail) == ("slug_taken", "The slug 'garden-tools' is already taken")
    assert await catalogue(database) == []


async def test_slug_taken_just_before_replace_is_refused(database, admin, monkeypatch):
    category_id = await add_category(database, "Kitchen", "kitchen")
    before = await catalogue(database)
    write_first(monkeypatch, categories_repo, "update_category", racing_category("garden"))
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await categories_service.replace_category(
                session=session, actor=admin, category_id=category_id, name="Other", slug="garden"
            )
    assert (refused.value.code, refused.value.detail) == ("slug_taken", "The slug 'garden' is already taken")
    assert await catalogue(database) == before


async def test_product_added_just_before_delete_keeps_the_category(database, admin, monkeypatch):
    category_id = await add_category(database, "Garden", "garden")
    before = await catalogue(database)

    async def racing_product(session: AsyncSession) -> None:
        values = {"name": "Rake", "description": "", "price": Decimal("1.00"), "stock": 1, "category_id": category_id}
        await session.execute(insert(Product).values(**values))

    write_first(monkeypatch, categories_repo, "delete_category", racing_product)
    async with database.sessionmaker() as session:
        with pytest.raises(ConflictError) as refused:
            await categories_service.delete_category(session=session, actor=admin, category_id=category_id)
    assert (refused.value.code, refused.value.detail) == (
        "category_in_use",
        f"Category {category_id} still has products",
    )
    assert await catalogue(database) == before
