"""Request and response bodies of the API, and the validation rules of the contract.

The resources' own representations (UserOut, ProductOut, ...) live in `representations`, which events share;
they are re-exported here for the routes.
"""

import re
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from auth.roles import Role
from auth.security import MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES, PASSWORD_RULE, USERNAME_PATTERN, password_size_ok
from database.pagination import Page as PageResult
from models.base import CENT, MAX_ID
from models.order import OrderStatus
from representations import CategoryOut as CategoryOut
from representations import OrderItemOut as OrderItemOut
from representations import OrderOut as OrderOut
from representations import ProductOut as ProductOut
from representations import ResponseModel
from representations import UserOut as UserOut
from services.catalogue import SORT_NAMES
from services.events import EventType

T = TypeVar("T")

# Prices go up to a power of ten, so that a pattern can state the bound to clients that send strings.
MAX_PRICE_EXPONENT = 6
MAX_PRICE = (Decimal(10) ** MAX_PRICE_EXPONENT).quantize(CENT)
MAX_STOCK = 1_000_000_000
SLUG_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"

Id = Annotated[int, Field(ge=1, le=MAX_ID, strict=True)]

# An id in a URL in its one spelling: ASCII digits, no sign, spaces, point, underscore or leading zero.
_PLAIN_ID = re.compile(r"[1-9][0-9]{0,9}")


def _plain_decimal(value: Any) -> Any:
    # Pydantic reads " 88", "+88", "088", "0_88" and "88.0" as 88, so one resource would answer to many URLs.
    if isinstance(value, str) and not _PLAIN_ID.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be an integer written in plain digits 0-9")
    return value


# For ids in paths and query strings, which arrive as text; ids in JSON bodies are `Id` (JSON integers only).
# The bounds come before the validator so that the OpenAPI schema keeps them as minimum and maximum.
IdParam = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_plain_decimal)]
# The `{id}` of every route: FastAPI's parameter is named after the resource (`product_id`), the path says `id`.
PathId = Annotated[IdParam, Path(alias="id")]


# Money arrives as a string or a number with at most two decimals. Pydantic checks the bounds on the Decimal;
# the schema states them: below MAX_PRICE (at most MAX_PRICE_EXPONENT integer digits), or MAX_PRICE itself.
PRICE_STRING_PATTERN = (
    rf"^(?:(?:0|[1-9][0-9]{{0,{MAX_PRICE_EXPONENT - 1}}})(?:\.[0-9]{{1,2}})?|{int(MAX_PRICE)}(?:\.0{{1,2}})?)$"
)
# A price sent as text in the pattern's spelling. Decimal() also reads " 5", "+5", "05", "1_0", "1e2", "1.000" and
# Arabic-Indic digits, which the documented pattern refuses; the bounds stay Pydantic's, with their own messages.
_PLAIN_AMOUNT = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]{1,2})?")


def _plain_amount(value: Any) -> Any:
    if isinstance(value, str) and not _PLAIN_AMOUNT.fullmatch(value):
        raise PydanticCustomError(
            "decimal_parsing", "Input should be an amount written in digits 0-9 with at most two decimals"
        )
    return value


Price = Annotated[
    Decimal,
    Field(gt=0, le=MAX_PRICE, decimal_places=2, allow_inf_nan=False),
    BeforeValidator(_plain_amount),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": int(MAX_PRICE)},
                {"type": "string", "pattern": PRICE_STRING_PATTERN},
            ]
        },
        mode="validation",
    ),
]


def _refuse_nul(text: str) -> str:
    # PostgreSQL cannot store U+0000 in text (the driver raises) and bcrypt refuses it: say so up front.
    if "\x00" in text:
        raise ValueError("text must not contain NUL (U+0000) characters")
    return text


NoNul = AfterValidator(_refuse_nul)


def _trimmed(min_length: int, max_length: int) -> Any:
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length), NoNul]


def _password_bytes(password: str) -> str:
    if not password_size_ok(password):
        raise ValueError(PASSWORD_RULE)
    return password


Password = Annotated[
    str,
    NoNul,
    AfterValidator(_password_bytes),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "minLength": MIN_PASSWORD_BYTES,
            "maxLength": MAX_PASSWORD_BYTES,
            "description": "8 to 72 bytes in UTF-8",
        }
    ),
]
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]


class RequestModel(BaseModel):
    """Request bodies refuse unknown fields, so nothing can be set through a field the endpoint does not name."""

    model_config = ConfigDict(extra="forbid")


ResponseT = TypeVar("ResponseT", bound=ResponseModel)


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, served as `application/problem+json`."""

    type: str = Field(examples=["about:blank"])
    title: str = Field(examples=["Conflict"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["Not enough stock for product 7"])
    code: str = Field(description="Stable, machine-readable snake_case reason", examples=["insufficient_stock"])
    request_id: str = Field(description="Equals the response's X-Request-ID header")
    errors: list[ValidationIssue] | None = Field(default=None, description="Present on 422 only")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None = Field(description="Items matching the query; null in cursor mode, which counts nothing")
    page: int | None = Field(description="null in cursor mode")
    size: int
    pages: int | None = Field(description="0 when total is 0; null in cursor mode")
    next_cursor: str | None = Field(
        description="Send as `cursor` for the items after this page's last one, in the same order and with the "
        "same filters; null when no item follows"
    )


def page_of(schema: type[ResponseT], result: PageResult[Any], *, next_cursor: str | None) -> Page[ResponseT]:
    """Shape a page of ORM objects as the API's page envelope."""
    return Page[schema](  # type: ignore[valid-type]
        items=[schema.model_validate(item) for item in result.items],
        total=result.total,
        page=result.page,
        size=result.size,
        pages=result.pages,
        next_cursor=next_cursor,
    )


# Auth and users


Email = Annotated[EmailStr, Field(max_length=320)]
# A password as typed to prove who one is: never judged by the rules for a new one, only checked.
GivenPassword = Annotated[str, Field(min_length=1, max_length=1024), NoNul]
# A mailed token as sent back: any string is accepted here, and one that is not a live token is a 400, not a 422.
MailedToken = Annotated[str, Field(description="The token from the mail's link")]


class RegisterIn(RequestModel):
    username: Username = Field(description="3-32 characters of A-Z a-z 0-9 _ . -")
    email: Email
    password: Password


class UserCreateIn(RegisterIn):
    role: Role = Role.USER


class ProfilePatch(RequestModel):
    # Either field may be omitted, but not sent as null: the None defaults are "absent", never a value.
    username: Username = Field(default=None, description="3-32 characters of A-Z a-z 0-9 _ . -")  # type: ignore[assignment]
    email: Email = Field(default=None, description="A new address is unverified until its mail is followed")  # type: ignore[assignment]


class PasswordChangeIn(RequestModel):
    current_password: GivenPassword
    new_password: Password


class PasswordIn(RequestModel):
    password: GivenPassword


class PasswordResetIn(RequestModel):
    email: Email


class PasswordResetConfirmIn(RequestModel):
    token: MailedToken
    new_password: Password


class VerifyEmailIn(RequestModel):
    token: MailedToken


class AcceptedOut(BaseModel):
    detail: str


class LoginIn(RequestModel):
    username: Annotated[str, Field(min_length=1, max_length=320, description="Username or email"), NoNul]
    password: GivenPassword


class RefreshIn(RequestModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512), NoNul]


class LogoutIn(RequestModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512), NoNul] | None = None


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class UserPatch(RequestModel):
    # Either field may be omitted, but not sent as null: the None defaults are "absent", never a value.
    role: Role = None  # type: ignore[assignment]
    is_active: bool = Field(default=None, strict=True)  # type: ignore[assignment]


# Catalogue


class CategoryIn(RequestModel):
    name: _trimmed(1, 100)
    slug: Annotated[str, StringConstraints(pattern=SLUG_PATTERN, max_length=100)] | None = Field(
        default=None, description="Derived from the name when absent"
    )


class ProductIn(RequestModel):
    name: _trimmed(1, 200)
    description: Annotated[str, Field(max_length=5000), NoNul] = Field(
        default="", description="HTML is sanitised: scripts, event handlers and javascript: URLs are removed"
    )
    price: Price = Field(description="A string or a number with at most two decimals", examples=["19.90"])
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK, strict=True)]
    category_id: Id | None = None

    @field_validator("description")
    @classmethod
    def _trim_description(cls, value: str) -> str:
        return value.strip()


ProductSort = Literal[SORT_NAMES]


# Orders


class OrderLineIn(RequestModel):
    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=1000, strict=True)]


class OrderIn(RequestModel):
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=100)]

    @field_validator("items")
    @classmethod
    def _each_product_once(cls, items: list[OrderLineIn]) -> list[OrderLineIn]:
        product_ids = [item.product_id for item in items]
        if len(set(product_ids)) != len(product_ids):
            raise ValueError("each product may appear at most once")
        return items


class OrderStatusIn(RequestModel):
    status: OrderStatus


# Events


# The `type` filter of the feed: an event type, or a prefix of types ending in "." (`shop.order.`).
EVENT_TYPE_FILTER_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$"
# The `subject` filter: a resource as `<collection>/<id>` (`orders/42`).
EVENT_SUBJECT_PATTERN = r"^[a-z]+/[1-9][0-9]*$"


class CloudEventOut(BaseModel):
    """A domain event as CloudEvents 1.0 structured JSON: what the feed lists and NATS receives."""

    specversion: Literal["1.0"]
    id: str = Field(description="Unique; a consumer that may see an event twice deduplicates by it")
    source: str = Field(description="EVENT_SOURCE", examples=["/shop"])
    type: EventType
    subject: str = Field(description="The resource, as `<collection>/<id>`", examples=["orders/42"])
    time: str = Field(
        description="When the change was made (ISO 8601 with +00:00)", json_schema_extra={"format": "date-time"}
    )
    datacontenttype: Literal["application/json"]
    actor: str = Field(
        description="Who made the change: `users/<id>` (the new user itself for a registration), `system` for "
        "an expiry",
        examples=["users/7"],
    )
    data: dict[str, Any] = Field(
        description='The resource as its GET returns it after the change; `{"id"}` for a deletion; '
        "`shop.order.status_changed` adds `previous_status`"
    )


# Infrastructure


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessOut(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, Literal["ok", "unavailable"]]
