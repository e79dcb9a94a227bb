"""ORM models. Importing this package registers every table on `Base.metadata`."""

from models.base import Base
from models.event import Event
from models.order import IdempotencyKey, Order, OrderItem, OrderStatus
from models.product import Category, Product
from models.token import AccountToken, RefreshToken, RefreshTokenFamily, RevokedAccessToken, TokenPurpose
from models.user import User

__all__ = [
    "AccountToken",
    "Base",
    "Category",
    "Event",
    "IdempotencyKey",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Product",
    "RefreshToken",
    "RefreshTokenFamily",
    "RevokedAccessToken",
    "TokenPurpose",
    "User",
]
