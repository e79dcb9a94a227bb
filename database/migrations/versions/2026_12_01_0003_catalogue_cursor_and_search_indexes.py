"""Catalogue indexes for cursor pages and for name search.

Each sort key of GET /products gets the id, its tie-breaker, beside it in its index, so that a cursor page
(`(price, id) > (:price, :id) ORDER BY price, id LIMIT n`) is one range of one index, however deep it starts and
however many products share the key. On PostgreSQL, a pg_trgm GIN index on lower(name) serves `q`
(`lower(name) LIKE '%...%'`); the extension is created when missing, which needs a role allowed to create it
(or an administrator who created it beforehand). SQLite keeps scanning for `q`.

Building the indexes blocks writes to products while it runs: seconds per million products.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORT_KEYS = ("price", "created_at", "name")
TRIGRAM_INDEX = "ix_products_name_trigram"


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    for key in SORT_KEYS:
        op.create_index(f"ix_products_{key}_id", "products", [key, "id"])
        op.drop_index(f"ix_products_{key}", "products")
    if _is_postgresql():
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(TRIGRAM_INDEX, "products", [sa.text("lower(name) gin_trgm_ops")], postgresql_using="gin")


def downgrade() -> None:
    # The extension stays: other databases objects may have come to use it.
    if _is_postgresql():
        op.drop_index(TRIGRAM_INDEX, "products")
    for key in SORT_KEYS:
        op.create_index(f"ix_products_{key}", "products", [key])
        op.drop_index(f"ix_products_{key}_id", "products")
