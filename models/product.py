"""The catalogue: categories and the products in them."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, IntPK, Money, TimestampMixin, UTCDateTime


class Category(TimestampMixin, Base):
    __tablename__ = "categories"

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(100), index=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)


class Product(TimestampMixin, Base):
    """A product on sale. Deleting one only stamps `deleted_at`, so past orders keep what they refer to."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price > 0", name="price_positive"),
        # One index per list filter and sort key of GET /products. A sort key's index ends with the id, the
        # tie-breaker, so that a cursor page, (price, id) > (:price, :id), is one range of it.
        Index("ix_products_category_id_id", "category_id", "id"),
        Index("ix_products_price_id", "price", "id"),
        Index("ix_products_created_at_id", "created_at", "id"),
        Index("ix_products_name_id", "name", "id"),
        Index("ix_products_stock", "stock"),
    )

    id: Mapped[IntPK]
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Money)
    stock: Mapped[int] = mapped_column(Integer)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


# `q` is lower(name) LIKE '%...%': on PostgreSQL, pg_trgm's trigrams of the folded name serve it from an index.
# SQLite has no such index and scans.
Index(
    "ix_products_name_trigram",
    func.lower(Product.name).label("folded_name"),
    postgresql_using="gin",
    postgresql_ops={"folded_name": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
