"""Page requests and results, shared by every list query."""

from dataclasses import dataclass
from math import ceil
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return ceil(self.total / self.size) if self.total else 0


async def fetch_page(session: AsyncSession, query: Select[tuple[T]], request: PageRequest) -> Page[T]:
    """Run `query` (already filtered and ordered) for one page, plus one count of all matching rows."""
    count_query = select(func.count()).select_from(query.order_by(None).subquery())
    total = (await session.execute(count_query)).scalar_one()
    items: list[T] = []
    if request.offset < total:
        items = list((await session.scalars(query.limit(request.size).offset(request.offset))).all())
    return Page(items=items, total=total, page=request.page, size=request.size)
