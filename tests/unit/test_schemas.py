"""Validation and serialisation rules of api/schemas.py: money, names, slugs, strict integers, unknown fields."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from api.routing import loads_exact
from api.schemas import (
    MAX_PRICE,
    PRICE_STRING_PATTERN,
    CategoryIn,
    CategoryOut,
    OrderLineIn,
    OrderOut,
    ProductIn,
    ProductOut,
    RegisterIn,
)
from config import Settings
from main import create_app
from models.base import MAX_ID

VALID_PRODUCT: dict[str, Any] = {"name": "Hammer", "price": "19.90", "stock": 5}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def product(**changes: Any) -> ProductIn:
    return ProductIn.model_validate({**VALID_PRODUCT, **changes})


def refused_fields(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [tuple(error["loc"]) for error in caught.value.errors()]


def product_out(price: Decimal) -> ProductOut:
    return ProductOut(
        id=1,
        name="Hammer",
        description="",
        price=price,
        stock=1,
        category_id=None,
        created_at=NOW,
        updated_at=NOW,
    )


# Money in


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("19.90", Decimal("19.90")),
        ("19.9", Decimal("19.9")),
        (19.9, Decimal("19.9")),
        (19, Decimal(19)),
        ("0.01", Decimal("0.01")),
        (0.01, Decimal("0.01")),
        ("1000000.00", Decimal("1000000.00")),
        (1_000_000, Decimal(1_000_000)),
    ],
)
def test_price_accepts_a_string_or_a_number_with_at_most_two_decimals(given: Any, expected: Decimal) -> None:
    price = product(price=given).price
    assert isinstance(price, Decimal)
    assert price == expected


@pytest.mark.parametrize(
    "given",
    [
        "0",
        0,
        "0.00",
        "-0.01",
        -5,
        "1000000.01",
        1_000_000.01,
        "0.001",
        "19.999",
        19.999,
        0.1 + 0.2,  # a binary float that is not the decimal it looks like
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        float("nan"),
        float("inf"),
        "",
        "abc",
        "19,90",
        None,
        True,
        [],
    ],
)
def test_price_refuses_zero_negative_too_large_too_precise_and_non_numbers(given: Any) -> None:
    assert refused_fields(ProductIn, {**VALID_PRODUCT, "price": given}) == [("price",)]


@pytest.mark.parametrize("literal", ["1e400", "NaN", "Infinity", "-Infinity", '"NaN"'])
def test_price_refuses_non_finite_values_in_json(literal: str) -> None:
    with pytest.raises(ValidationError):
        ProductIn.model_validate_json('{"name": "Hammer", "stock": 1, "price": ' + literal + "}")


def test_price_from_a_json_number_stays_exact() -> None:
    assert ProductIn.model_validate_json('{"name": "Hammer", "stock": 1, "price": 0.1}').price == Decimal("0.1")


@pytest.mark.parametrize(
    "given",
    [
        *["0.01", "999999.99", "1000000", "1000000.0", "1000000.00", "1000000.01", "1000001", "9999999"],
        # Spellings that Decimal() reads and the pattern does not.
        *[" 5", "5 ", "+5", "05", "1_0", "1e2", "1.000", "19.900", "\u0661\u0662", "5."],
    ],
)
def test_the_documented_price_pattern_and_bounds_are_the_validated_ones(given: str) -> None:
    number, string = ProductIn.model_json_schema()["properties"]["price"]["anyOf"]
    assert Decimal(number["maximum"]) == MAX_PRICE
    try:
        product(price=given)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert (re.fullmatch(string["pattern"], given) is not None) is accepted


# Money out


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("19.9"), "19.90"),
        (Decimal(19), "19.00"),
        (Decimal("0.01"), "0.01"),
        (Decimal("1000000.00"), "1000000.00"),
        (Decimal("100000000000.00"), "100000000000.00"),
    ],
)
def test_money_is_serialised_as_a_string_with_two_decimals(amount: Decimal, text: str) -> None:
    assert product_out(amount).model_dump(mode="json")["price"] == text
    assert json.loads(product_out(amount).model_dump_json())["price"] == text


def test_an_order_total_of_a_hundred_billion_is_serialised_exactly() -> None:
    order = OrderOut(
        id=1,
        user_id=1,
        status="pending",
        total=Decimal("100000000000.00"),
        created_at=NOW,
        updated_at=NOW,
        expires_at=None,
        items=[],
    )
    assert json.loads(order.model_dump_json())["total"] == "100000000000.00"


def test_openapi_documents_money_as_a_string() -> None:
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    schemas = app.openapi()["components"]["schemas"]
    money = [("ProductOut", "price"), ("OrderOut", "total"), ("OrderItemOut", "price")]
    assert {case: schemas[case[0]]["properties"][case[1]]["type"] for case in money} == dict.fromkeys(money, "string")
    # On the way in a number is accepted too, and the schema says so.
    accepted = {option["type"] for option in schemas["ProductIn"]["properties"]["price"]["anyOf"]}
    assert accepted == {"number", "string"}


# Names and descriptions


def test_names_and_descriptions_are_trimmed() -> None:
    body = product(name="  Hammer \t", description="\n  <b>Sturdy</b>  ")
    assert (body.name, body.description) == ("Hammer", "<b>Sturdy</b>")
    assert CategoryIn.model_validate({"name": "  Tools  "}).name == "Tools"


@pytest.mark.parametrize(
    ("model", "field", "longest", "body"),
    [
        (ProductIn, "name", 200, VALID_PRODUCT),
        (CategoryIn, "name", 100, {}),
        (ProductIn, "description", 5000, VALID_PRODUCT),
    ],
)
def test_text_length_limits(model: type[BaseModel], field: str, longest: int, body: dict[str, Any]) -> None:
    assert len(getattr(model.model_validate({**body, field: "x" * longest}), field)) == longest
    assert refused_fields(model, {**body, field: "x" * (longest + 1)}) == [(field,)]


@pytest.mark.parametrize(("model", "longest", "body"), [(ProductIn, 200, VALID_PRODUCT), (CategoryIn, 100, {})])
def test_name_length_counts_after_trimming(model: type[BaseModel], longest: int, body: dict[str, Any]) -> None:
    assert model.model_validate({**body, "name": f"  {'x' * longest}  "}).name == "x" * longest


@pytest.mark.parametrize(("model", "body"), [(ProductIn, VALID_PRODUCT), (CategoryIn, {})])
@pytest.mark.parametrize("name", ["", "   ", "\t\n", None, 5])
def test_names_must_have_content(model: type[BaseModel], body: dict[str, Any], name: Any) -> None:
    assert refused_fields(model, {**body, "name": name}) == [("name",)]


def test_description_is_optional_and_defaults_to_empty() -> None:
    assert ProductIn.model_validate({"name": "Hammer", "price": "1.00", "stock": 0}).description == ""


def test_product_requires_name_price_and_stock() -> None:
    assert sorted(refused_fields(ProductIn, {})) == [("name",), ("price",), ("stock",)]


# Slugs


@pytest.mark.parametrize("slug", ["a", "garden-tools", "a1-b2-c3", "123", "x" * 100])
def test_slug_pattern_accepts(slug: str) -> None:
    assert CategoryIn.model_validate({"name": "Tools", "slug": slug}).slug == slug


@pytest.mark.parametrize("slug", ["", "Garden", "-a", "a-", "a--b", "a_b", "a b", "a.b", "äpfel", " a", "x" * 101, 5])
def test_slug_pattern_refuses(slug: Any) -> None:
    assert refused_fields(CategoryIn, {"name": "Tools", "slug": slug}) == [("slug",)]


def test_slug_is_optional() -> None:
    assert CategoryIn.model_validate({"name": "Tools"}).slug is None


# Unknown fields


@pytest.mark.parametrize(
    ("model", "body", "extra"),
    [
        (ProductIn, VALID_PRODUCT, "id"),
        (ProductIn, VALID_PRODUCT, "created_at"),
        (ProductIn, VALID_PRODUCT, "deleted_at"),
        (CategoryIn, {"name": "Tools"}, "id"),
        (RegisterIn, {"username": "alice", "email": "alice@example.com", "password": "long-enough"}, "role"),
        (RegisterIn, {"username": "alice", "email": "alice@example.com", "password": "long-enough"}, "is_active"),
    ],
)
def test_unknown_fields_are_refused(model: type[BaseModel], body: dict[str, Any], extra: str) -> None:
    assert refused_fields(model, {**body, extra: 1}) == [(extra,)]


def test_responses_never_carry_fields_they_do_not_name() -> None:
    category = CategoryOut.model_validate({"id": 1, "name": "Tools", "slug": "tools", "secret": "x"})
    assert category.model_dump() == {"id": 1, "name": "Tools", "slug": "tools"}


# Strict integers


@pytest.mark.parametrize("stock", [0, 1, 1_000_000_000])
def test_stock_accepts_integers_in_range(stock: int) -> None:
    assert product(stock=stock).stock == stock


@pytest.mark.parametrize("stock", ["5", 5.5, 5.0, True, None, -1, 1_000_000_001])
def test_stock_refuses_anything_but_an_integer_in_range(stock: Any) -> None:
    assert refused_fields(ProductIn, {**VALID_PRODUCT, "stock": stock}) == [("stock",)]


@pytest.mark.parametrize("literal", ['"5"', "5.0", "true"])
def test_stock_is_strict_in_json_too(literal: str) -> None:
    with pytest.raises(ValidationError):
        ProductIn.model_validate_json('{"name": "Hammer", "price": "1.00", "stock": ' + literal + "}")


@pytest.mark.parametrize("category_id", ["1", 1.0, True, 0, -1, 2**31])
def test_category_id_refuses_anything_but_a_positive_integer(category_id: Any) -> None:
    assert refused_fields(ProductIn, {**VALID_PRODUCT, "category_id": category_id}) == [("category_id",)]


@pytest.mark.parametrize("category_id", [None, 1, 2**31 - 1])
def test_category_id_is_optional(category_id: int | None) -> None:
    assert product(category_id=category_id).category_id == category_id


# Properties: what a JSON body can hold, read the way the routes read it (api/routing.py's loads_exact).

PRICES = st.decimals(min_value=Decimal("0.01"), max_value=MAX_PRICE, places=2)
# Decimals of every size and precision, many near the contract's bounds and its two places, and allowed prices
# off by a digit far behind the point, which a binary float would lose.
DECIMALS = st.one_of(
    st.decimals(allow_nan=False),
    st.integers(min_value=0, max_value=4).flatmap(
        lambda places: st.decimals(min_value=-1, max_value=MAX_PRICE + 1, places=places)
    ),
    PRICES,
    st.builds(
        lambda price, digits, sign: price + sign * Decimal(1).scaleb(-digits),
        PRICES,
        st.integers(min_value=3, max_value=20),
        st.sampled_from([1, -1]),
    ),
)
# The ways a client may write one number: 19.9, 1.99E+1, 1.990e+01.
SPELLINGS = st.sampled_from([str, "{:e}".format, "{:E}".format])


def read_body(field: str, literal: str, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, **loads_exact(f'{{"{field}": {literal}}}'.encode())}


def price_allowed(price: Decimal) -> bool:
    """API.md: more than zero, at most 1,000,000.00, at most two decimals."""
    return price.is_finite() and 0 < price <= MAX_PRICE and price == price.quantize(Decimal("0.01"))


@given(DECIMALS, SPELLINGS, st.booleans())
@example(Decimal("NaN"), str, False)
@example(Decimal("-Infinity"), str, True)
@example(MAX_PRICE, "{:E}".format, False)  # the bound itself, which drawing seldom hits exactly
def test_price_accepts_exactly_the_amounts_the_contract_allows(price, spell, as_string):
    literal = json.dumps(spell(price)) if as_string else spell(price)
    body = read_body("price", literal, VALID_PRODUCT)
    # A string is also held to the documented pattern: one spelling, with no exponent and no third decimal.
    if price_allowed(price) and (not as_string or re.fullmatch(PRICE_STRING_PATTERN, spell(price))):
        assert ProductIn.model_validate(body).price == price
    else:
        assert refused_fields(ProductIn, body) == [("price",)]


# Each integer field of a body, with a valid body around it and its range.
INTEGER_FIELDS = [
    (ProductIn, "stock", VALID_PRODUCT, 0, 1_000_000_000),
    (ProductIn, "category_id", VALID_PRODUCT, 1, MAX_ID),
    (OrderLineIn, "product_id", {"quantity": 1}, 1, MAX_ID),
    (OrderLineIn, "quantity", {"product_id": 1}, 1, 1000),
]


@given(st.sampled_from(INTEGER_FIELDS), SPELLINGS, st.data())
def test_integer_fields_accept_exactly_the_json_integers_in_their_range(field, spell, data):
    model, name, body, lowest, highest = field
    literal = spell(data.draw(DECIMALS | st.integers(min_value=lowest - 1, max_value=highest + 1).map(Decimal)))
    body = read_body(name, literal, body)
    # A JSON integer has no point and no exponent; 5.0 and 5E0 are another number type, whatever their value.
    if literal.lstrip("-").isdigit() and lowest <= int(literal) <= highest:
        assert getattr(model.model_validate(body), name) == int(literal)
    else:
        assert refused_fields(model, body) == [(name,)]
