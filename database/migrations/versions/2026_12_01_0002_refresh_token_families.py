"""Refresh-token families: one row per login, whose revocation every token of the family obeys.

Revoking a family used to mark its token rows, which could miss the token a concurrent rotation had inserted but
not committed. The family's own row is now the one flag, locked by rotation and written by revocation.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from contextlib import AbstractContextManager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from models.base import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAMILY_FOREIGN_KEY = "fk_refresh_tokens_family_id_refresh_token_families"


def _batch_alter_refresh_tokens() -> AbstractContextManager[BatchOperations]:
    # SQLite's rebuild reflects the table; following its foreign keys would reflect `users` too, whose expression
    # indexes SQLAlchemy cannot reflect there (and warns). Only the table itself is needed.
    return op.batch_alter_table("refresh_tokens", reflect_kwargs={"resolve_fks": False})


def upgrade() -> None:
    op.create_table(
        "refresh_token_families",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_token_families_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token_families")),
    )
    op.create_index(op.f("ix_refresh_token_families_user_id"), "refresh_token_families", ["user_id"])
    # A family with any token revoked was revoked: one with a token left live is one that outlived its revocation
    # (the race this revision closes), and it ends here.
    op.execute(
        "INSERT INTO refresh_token_families (id, user_id, created_at, revoked_at) "
        "SELECT family_id, MIN(user_id), MIN(created_at), MAX(revoked_at) FROM refresh_tokens GROUP BY family_id"
    )
    # Batch mode, for SQLite: it rebuilds the table to add a foreign key or drop a column.
    with _batch_alter_refresh_tokens() as batch:
        batch.create_foreign_key(
            op.f(FAMILY_FOREIGN_KEY), "refresh_token_families", ["family_id"], ["id"], ondelete="CASCADE"
        )
        batch.drop_column("revoked_at")


def downgrade() -> None:
    with _batch_alter_refresh_tokens() as batch:
        batch.add_column(sa.Column("revoked_at", UTCDateTime(), nullable=True))
        batch.drop_constraint(op.f(FAMILY_FOREIGN_KEY), type_="foreignkey")
    op.execute(
        "UPDATE refresh_tokens SET revoked_at = (SELECT revoked_at FROM refresh_token_families "
        "WHERE refresh_token_families.id = refresh_tokens.family_id)"
    )
    op.drop_table("refresh_token_families")
