"""List cursors: exact round trips, and a refusal for every cursor the codec did not issue for that scope."""

import string
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from api.cursors import MAX_CURSOR_LENGTH, CursorCodec, list_scope
from api.schemas import MAX_PRICE
from models.base import MAX_ID
from services.catalogue import SORT_NAMES, ProductFilter
from services.errors import InvalidCursorError

CODEC = CursorCodec("a-secret-key-that-is-long-enough-for-cursors")
SCOPE = list_scope("/api/v1/products", {"sort": "price"})
BASE64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
KEYS = [
    (1,),
    (Decimal("0.01"), 7),
    (Decimal("999999.99"), 2**31 - 1),
    ('Ünïcödé "name" with . and , and \\', 3),
    (datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC), 9),
    (datetime(2026, 1, 1, tzinfo=UTC), 10),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(key) for key in KEYS])
def test_a_cursor_holds_its_sort_key_exactly(key):
    decoded = CODEC.decode(SCOPE, CODEC.encode(SCOPE, key))
    assert decoded == key
    assert [type(value) for value in decoded] == [type(value) for value in key]


@pytest.mark.parametrize("key", KEYS, ids=[repr(key) for key in KEYS])
def test_every_one_character_change_is_refused(key):
    cursor = CODEC.encode(SCOPE, key)
    for position, character in enumerate(cursor):
        for replacement in {BASE64URL[(BASE64URL.find(character) + 1) % 64], ".", "="} - {character}:
            with pytest.raises(InvalidCursorError):
                CODEC.decode(SCOPE, cursor[:position] + replacement + cursor[position + 1 :])


def test_a_cursor_is_spelled_one_way():
    """The MAC's last base64 character has bits no byte uses; changing only those is an alteration too."""
    cursor = CODEC.encode(SCOPE, (5,))
    last = BASE64URL.index(cursor[-1])
    respelled = cursor[:-1] + BASE64URL[last ^ 1]
    with pytest.raises(InvalidCursorError):
        CODEC.decode(SCOPE, respelled)
    padded = cursor + "="
    with pytest.raises(InvalidCursorError):
        CODEC.decode(SCOPE, padded)


def test_a_cursor_of_another_scope_or_key_is_refused():
    cursor = CODEC.encode(SCOPE, (Decimal("5.00"), 1))
    others = [
        list_scope("/api/v1/products", {"sort": "-price"}),
        list_scope("/api/v1/products", {"sort": "price", "q": None}),
        list_scope("/api/v1/categories", {"sort": "price"}),
    ]
    for scope in others:
        with pytest.raises(InvalidCursorError):
            CODEC.decode(scope, cursor)
    with pytest.raises(InvalidCursorError):
        CursorCodec("another-secret-key-that-is-long-enough").decode(SCOPE, cursor)


@pytest.mark.parametrize(
    "garbage", ["", ".", "a.b.c", "é.é", "\x00.\x00", "W10", "W10.", "A" * (MAX_CURSOR_LENGTH + 1), "e30.AAAA"]
)
def test_garbage_is_refused(garbage):
    with pytest.raises(InvalidCursorError):
        CODEC.decode(SCOPE, garbage)


@dataclass(frozen=True)
class Filters:
    min_price: Decimal | None
    q: str | None


def test_the_scope_is_the_list_and_its_filters_as_values():
    scope = list_scope("/api/v1/products", {"filters": Filters(Decimal("10"), "rake")})
    assert list_scope("/api/v1/products", {"filters": Filters(Decimal("10.00"), "rake")}) == scope
    assert list_scope("/api/v1/products", {"filters": Filters(Decimal("10.01"), "rake")}) != scope
    assert list_scope("/api/v1/products", {"filters": Filters(Decimal("10"), "Rake")}) != scope
    assert list_scope("/api/v1/products", {"filters": Filters(None, "rake")}) != scope
    assert list_scope("/api/v1/orders", {"filters": Filters(Decimal("10"), "rake")}) != scope
    assert list_scope("/api/v1/orders", {"user_id": 1, "status": None}) == list_scope(
        "/api/v1/orders", {"status": None, "user_id": 1}
    )


# Properties: the values a sort column holds, as the database hands them back.

IDS = st.integers(min_value=1, max_value=MAX_ID)
PRICES = st.decimals(min_value=Decimal("0.01"), max_value=MAX_PRICE, places=2)
SORT_VALUES = st.one_of(
    IDS,
    PRICES,
    st.text(max_size=200),
    st.datetimes(timezones=st.just(UTC)),
)
SORT_KEYS = st.tuples(SORT_VALUES, IDS) | st.tuples(IDS)


def spelled(key: tuple[object, ...]) -> list[tuple[type, str]]:
    """Each value's type and exact text, where == would let 19.9 pass for 19.90."""
    return [(type(value), value.isoformat() if isinstance(value, datetime) else str(value)) for value in key]


@given(SORT_KEYS)
# The longest cursor: every character of a 200-character name escaped in the JSON as a surrogate pair.
@example(("\U0010ffff" * 200, MAX_ID))
def test_a_cursor_holds_any_sort_key_exactly(key):
    assert spelled(CODEC.decode(SCOPE, CODEC.encode(SCOPE, key))) == spelled(key)


@st.composite
def altered(draw, cursor: str) -> str:
    """`cursor` with one stretch of it replaced: a character changed, some removed or put in, cut or extended."""
    start = draw(st.integers(min_value=0, max_value=len(cursor)))
    end = draw(st.integers(min_value=start, max_value=len(cursor)))
    # Mostly characters a cursor is made of, so that many alterations get past the syntax to the MAC.
    characters = st.sampled_from(BASE64URL + ".=") | st.characters(codec="ascii") | st.characters()
    put_in = draw(st.text(characters, max_size=8).filter(lambda text: text != cursor[start:end]))
    return cursor[:start] + put_in + cursor[end:]


@given(SORT_KEYS, st.data())
def test_any_alteration_of_a_cursor_is_refused(key, data):
    cursor = CODEC.encode(SCOPE, key)
    with pytest.raises(InvalidCursorError):
        CODEC.decode(SCOPE, data.draw(altered(cursor)))


PATHS = st.sampled_from(["/api/v1/products", "/api/v1/categories", "/api/v1/orders", "/api/v1/users"])
PRICE_BOUNDS = st.none() | st.decimals(min_value=0, max_value=Decimal(10**9), places=2)
FILTER_FIELDS = {
    "category_id": st.none() | IDS,
    "q": st.none() | st.text(max_size=200),
    "min_price": PRICE_BOUNDS,
    "max_price": PRICE_BOUNDS,
    "in_stock": st.none() | st.booleans(),
    "sort": st.sampled_from(SORT_NAMES),
}


@st.composite
def nearby(draw, path: str, filters: ProductFilter) -> tuple[str, ProductFilter]:
    """The same list and query with one thing drawn again (which may draw the same), where a mix-up would hide."""
    changed = draw(st.sampled_from(["path", *FILTER_FIELDS]))
    if changed == "path":
        return draw(PATHS), filters
    return path, replace(filters, **{changed: draw(FILTER_FIELDS[changed])})


def respelled(filters: ProductFilter) -> ProductFilter:
    """The same filters with every price bound written another way (10.00 as 1E+1)."""
    return replace(
        filters,
        min_price=filters.min_price and filters.min_price.normalize(),
        max_price=filters.max_price and filters.max_price.normalize(),
    )


@given(PATHS, st.builds(ProductFilter, **FILTER_FIELDS), st.data())
def test_a_cursor_is_accepted_for_its_own_list_and_query_alone(path, filters, data):
    other_path, other_filters = data.draw(nearby(path, filters))
    cursor = CODEC.encode(list_scope(path, {"filters": filters}), (7,))
    other_scope = list_scope(other_path, {"filters": respelled(other_filters)})
    if (other_path, other_filters) == (path, filters):
        assert CODEC.decode(other_scope, cursor) == (7,)
    else:
        with pytest.raises(InvalidCursorError):
            CODEC.decode(other_scope, cursor)
