"""database/repositories and database/pagination against a real database: product name search and pages."""

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from database.pagination import Keyset, PageRequest, fetch_page
from database.repositories import categories as categories_repo
from database.repositories import products as products_repo
from models import Category, Product
from services.catalogue import ProductFilter


async def add_products(session: AsyncSession, *names: str) -> dict[str, int]:
    products = [Product(name=name, description="", price=Decimal("1.00"), stock=1) for name in names]
    session.add_all(products)
    await session.commit()
    return {product.name: product.id for product in products}


async def names_matching(session: AsyncSession, q: str) -> set[str]:
    page = await products_repo.list_products(session, ProductFilter(q=q), PageRequest(size=100))
    return {product.name for product in page.items}


# Each test stores its rows once and asks every question of them: one database set-up instead of one per case.


async def test_like_wildcards_in_q_match_themselves(session: AsyncSession) -> None:
    await add_products(
        session, "100% cotton", "100 cotton", "1000 cotton", "snake_case", "snakeXcase", "back\\slash", "backslash"
    )
    expected = {
        "%": {"100% cotton"},
        "0%": {"100% cotton"},
        "100%": {"100% cotton"},
        "_": {"snake_case"},
        "e_c": {"snake_case"},
        "\\": {"back\\slash"},
        "k\\s": {"back\\slash"},
        "cotton": {"100% cotton", "100 cotton", "1000 cotton"},
        "%%": set(),
        "__": set(),
    }
    assert {q: await names_matching(session, q) for q in expected} == expected


async def test_q_is_case_insensitive_beyond_ascii(session: AsyncSession) -> None:
    await add_products(session, "Hammer", "ÄPFEL", "äpfel", "Grüne Äpfel", "ΣΟΦΙΑ", "Ёлка", "Unrelated")
    expected = {
        "hAMMER": {"Hammer"},
        "äpfel": {"ÄPFEL", "äpfel", "Grüne Äpfel"},
        "ÄPFEL": {"ÄPFEL", "äpfel", "Grüne Äpfel"},
        "NE äp": {"Grüne Äpfel"},
        "ÜN": {"Grüne Äpfel"},
        "σοφ": {"ΣΟΦΙΑ"},
        "ёлК": {"Ёлка"},
    }
    assert {q: await names_matching(session, q) for q in expected} == expected


async def test_q_ignores_deleted_products(session: AsyncSession) -> None:
    ids = await add_products(session, "Old hammer", "New hammer")
    product = await session.get(Product, ids["Old hammer"])
    assert product is not None
    await products_repo.soft_delete_product(session, product, now=product.created_at)
    await session.commit()
    assert await names_matching(session, "hammer") == {"New hammer"}
    assert await products_repo.get_live_product(session, ids["Old hammer"]) is None


# Pages


async def test_fetch_page_of_nothing_has_no_pages(session: AsyncSession) -> None:
    page = await fetch_page(session, select(Category), PageRequest(page=1, size=20), Keyset((Category.id,)))
    assert (page.items, page.total, page.page, page.size, page.pages) == ([], 0, 1, 20, 0)


async def test_fetch_page(session: AsyncSession) -> None:
    session.add_all(Category(name=f"c{index}", slug=f"c{index}") for index in range(5))
    await session.commit()
    # (page, size) -> (names on the page, pages); total is 5 throughout.
    expected = {
        (1, 2): (["c0", "c1"], 3),
        (2, 2): (["c2", "c3"], 3),
        (3, 2): (["c4"], 3),
        (4, 2): ([], 3),  # past the last page: no items, but the totals still say what exists
        (1000, 2): ([], 3),
        (1, 5): (["c0", "c1", "c2", "c3", "c4"], 1),
        (1, 100): (["c0", "c1", "c2", "c3", "c4"], 1),
        (2, 4): (["c4"], 2),
    }
    seen = {}
    for page_number, size in expected:
        page = await categories_repo.list_categories(session, PageRequest(page=page_number, size=size))
        seen[page_number, size] = (
            [category.name for category in page.items],
            page.pages,
            page.total,
            page.page,
            page.size,
        )
    assert seen == {(number, size): (*found, 5, number, size) for (number, size), found in expected.items()}


async def test_total_counts_only_matching_rows(session: AsyncSession) -> None:
    await add_products(session, "Red hammer", "Blue hammer", "Red saw")
    page = await products_repo.list_products(session, ProductFilter(q="red"), PageRequest(page=1, size=1))
    assert (len(page.items), page.total, page.pages) == (1, 2, 2)
