"""Row versions for ETags and lost-update checks; payment deadlines of pending orders.

Every resource with a single-item URL gets a `version` that each change bumps (1 for the rows already there).
Orders get `expires_at`, the moment a pending order is cancelled unless paid, and an index that finds the
expired ones. Orders placed before this revision keep no deadline: the payment window they were placed under
had none.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED_TABLES = ("users", "categories", "products", "orders")
EXPIRY_INDEX = "ix_orders_status_expires_at"


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite, no rewrite on PostgreSQL 11+.
    for table in VERSIONED_TABLES:
        op.add_column(table, sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False))
    op.add_column("orders", sa.Column("expires_at", UTCDateTime(), nullable=True))
    op.create_index(EXPIRY_INDEX, "orders", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index(EXPIRY_INDEX, table_name="orders")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of `users` would lose its expression indexes there.
    op.drop_column("orders", "expires_at")
    for table in VERSIONED_TABLES:
        op.drop_column(table, "version")
