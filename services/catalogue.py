"""What a search of the catalogue may ask for: the filters of a product list and the keys it is sorted by."""

from dataclasses import dataclass
from decimal import Decimal

SORT_KEYS = ("id", "name", "price", "created_at")
# How a sort is named: a key for ascending, "-" and a key for descending.
SORT_NAMES = tuple(name for key in SORT_KEYS for name in (key, f"-{key}"))


@dataclass(frozen=True, slots=True)
class ProductFilter:
    category_id: int | None = None
    q: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    sort: str = "id"  # one of SORT_NAMES

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")
