"""Account lifecycle: verified e-mails, session generations, erased accounts, and mailed single-use tokens.

Every existing account starts unverified and at session generation 0, as does every existing refresh family:
the tokens already out stay good until one of the account's sessions is ended.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, with server defaults for the rows already there: SQLite would rebuild `users` for anything
    # more, and dropping the old table under its foreign keys would cascade into the tokens.
    op.add_column("users", sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("users", sa.Column("session_generation", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("users", sa.Column("deleted_at", UTCDateTime(), nullable=True))
    op.add_column(
        "refresh_token_families",
        sa.Column("session_generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "purpose IN ('reset_password', 'verify_email')", name=op.f("ck_account_tokens_purpose_known")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    op.create_index(op.f("ix_account_tokens_expires_at"), "account_tokens", ["expires_at"])
    op.create_index(op.f("ix_account_tokens_user_id"), "account_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_table("account_tokens")
    op.drop_column("refresh_token_families", "session_generation")
    for column in ("deleted_at", "session_generation", "email_verified"):
        op.drop_column("users", column)
