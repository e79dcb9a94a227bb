"""The resources as the API shows them: the one definition of what GET returns and what events carry as `data`.

Both layers import it: api/ serves these models, services/ put them into the events they record, so an event's
`data` is the resource exactly as its GET returns it, and services never import api/.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from auth.roles import Role
from models import Category, Order, Product, User
from models.order import OrderStatus

MONEY_PATTERN = r"^\d+\.\d{2}$"


def _format_money(amount: Decimal) -> str:
    return f"{amount:.2f}"


# Money leaves as a string with two decimals ("19.90"); the schema says so, not "number".
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(_format_money, return_type=str),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "examples": ["19.90"]}, mode="serialization"),
]
# Timestamps leave with an explicit offset ("+00:00"), which every ISO 8601 parser reads, rather than "Z".
Timestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-11-26T14:18:00.123456+00:00"]},
        mode="serialization",
    ),
]


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(ResponseModel):
    id: int
    username: str
    email: str
    role: Role
    is_active: bool
    email_verified: bool
    created_at: Timestamp


class CategoryOut(ResponseModel):
    id: int
    name: str
    slug: str


class ProductOut(ResponseModel):
    id: int
    name: str
    description: str
    price: MoneyOut
    stock: int
    category_id: int | None
    created_at: Timestamp
    updated_at: Timestamp


class OrderItemOut(ResponseModel):
    id: int
    product_id: int
    quantity: int
    price: MoneyOut = Field(description="Unit price when the order was placed")


class OrderOut(ResponseModel):
    id: int
    user_id: int
    status: OrderStatus
    total: MoneyOut
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None = Field(
        description="While pending: when it is cancelled unless paid (null if the shop sets no deadline); "
        "null once it has left pending"
    )
    items: list[OrderItemOut]


# What each kind of row is shown as.
_REPRESENTATIONS: dict[type, type[ResponseModel]] = {
    User: UserOut,
    Category: CategoryOut,
    Product: ProductOut,
    Order: OrderOut,
}


def representation(resource: User | Category | Product | Order) -> dict[str, Any]:
    """`resource` as its GET's JSON body has it (money as "19.90", timestamps with "+00:00"), as plain JSON values."""
    return _REPRESENTATIONS[type(resource)].model_validate(resource).model_dump(mode="json")
