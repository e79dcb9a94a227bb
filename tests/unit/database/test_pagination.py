"""database/pagination.py without a database: the number of pages, and where a page starts."""

import pytest

from database.pagination import Page, PageRequest


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 1, 0), (0, 100, 0), (1, 1, 1), (1, 100, 1), (100, 100, 1), (101, 100, 2)]
)
def test_pages_is_the_ceiling_of_total_over_size(total: int, size: int, pages: int) -> None:
    assert Page(items=[], total=total, page=1, size=size).pages == pages


@pytest.mark.parametrize(("page", "size", "offset"), [(1, 20, 0), (2, 20, 20), (3, 7, 14)])
def test_page_request_offset(page: int, size: int, offset: int) -> None:
    assert PageRequest(page=page, size=size).offset == offset
