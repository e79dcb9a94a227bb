"""Pages of every list query: numbered pages with a count, or keyset pages that continue after a sort key."""

from dataclasses import dataclass
from math import ceil
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")

# A row's place in its list: the values of the list's sort columns, in order.
SortKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Page `page` of `size` items, counted from 1; answered with the total."""

    page: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True, slots=True)
class CursorRequest:
    """The `size` items after the one whose sort key is `after` (None: from the first item); no count."""

    size: int = 20
    after: SortKey | None = None


ListRequest = PageRequest | CursorRequest


@dataclass(frozen=True, slots=True)
class Keyset:
    """A list's order: its sort columns, ending with a unique one so that every row has one place, one direction."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    @classmethod
    def of(
        cls, sort: InstrumentedAttribute[Any], tie_breaker: InstrumentedAttribute[Any], *, descending: bool = False
    ) -> "Keyset":
        """The order by `sort`, then by the unique `tie_breaker` unless that is `sort` itself."""
        return cls((sort,) if sort is tie_breaker else (sort, tie_breaker), descending)

    def order_by(self) -> list[ColumnElement[Any]]:
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def follows(self, key: SortKey) -> ColumnElement[bool]:
        """Rows after `key` in this order: one row-value comparison, which a btree index on the columns serves.

        Each value is bound as its column's type, so it compares exactly as stored (Money as cents on SQLite).
        """
        values = [literal(value, column.type) for value, column in zip(key, self.columns, strict=True)]
        if len(self.columns) == 1:
            return self.columns[0] < values[0] if self.descending else self.columns[0] > values[0]
        rows, bound = tuple_(*self.columns), tuple_(*values)
        return rows < bound if self.descending else rows > bound

    def key_of(self, item: Any) -> SortKey:
        return tuple(getattr(item, column.key) for column in self.columns)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; `total` and `page` are None for a keyset page, which counts nothing."""

    items: list[T]
    size: int
    total: int | None = None
    page: int | None = None
    # The sort key of the last item when more items follow it, else None: where the next page starts.
    next_key: SortKey | None = None

    @property
    def pages(self) -> int | None:
        if self.total is None:
            return None
        return ceil(self.total / self.size) if self.total else 0


async def fetch_page(
    session: AsyncSession | AsyncConnection, query: Select[tuple[T]], request: ListRequest, order: Keyset
) -> Page[T]:
    """Run `query` (filtered, not yet ordered) for one page in `order`: entities in a session, rows on a connection.

    A numbered page costs a count and the page; a keyset page is one statement, `size` + 1 rows, the extra row
    only telling whether more follow. Its cost does not grow with its depth, and rows inserted or deleted
    elsewhere in the list move no other row across a page boundary.
    """
    query = query.order_by(*order.order_by())
    if isinstance(request, CursorRequest):
        if request.after is not None:
            query = query.where(order.follows(request.after))
        rows = await _items(session, query.limit(request.size + 1))
        items = rows[: request.size]
        more = len(rows) > request.size
        return Page(items=items, size=request.size, next_key=order.key_of(items[-1]) if more else None)
    count_query = select(func.count()).select_from(query.order_by(None).subquery())
    total = (await session.execute(count_query)).scalar_one()
    items = []
    if request.offset < total:
        items = await _items(session, query.limit(request.size).offset(request.offset))
    more = bool(items) and request.offset + len(items) < total
    return Page(
        items=items,
        size=request.size,
        total=total,
        page=request.page,
        next_key=order.key_of(items[-1]) if more else None,
    )


async def _items(session: AsyncSession | AsyncConnection, query: Select[tuple[T]]) -> list[T]:
    if isinstance(session, AsyncConnection):
        # Core rows, each with its columns as attributes: no entities to build, nothing to eager-load.
        return list((await session.execute(query)).all())
    # unique(): a list that eager-loads a collection by join gets each of its rows once per child row.
    return list((await session.scalars(query)).unique().all())
