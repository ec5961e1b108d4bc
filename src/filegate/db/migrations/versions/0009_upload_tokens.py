"""Upload tokens: a row per token a backend mints for a browser, and who uploaded each file.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

Owner: filegate core team (browser uploads issue, #19)
Expected result: one new empty table ``upload_tokens`` with a unique constraint on
``token_hash``; ``files`` and ``uploads`` gain a nullable ``uploaded_by`` column (the upload
token's or the API key's id), NULL on every existing row. Adding a nullable column without a
default changes the catalogue only, on either database; no existing row is rewritten.
Rollback: downgrade() drops the column and the table: every upload token handed out stops
working (it answers 401 unauthenticated), and which token or key uploaded a file is forgotten;
files, keys, uploads and jobs are otherwise untouched.
Expected duration: 0.15 s (SQLite) to 0.25 s (PostgreSQL) on 200,000 rows of files and of
uploads; downgrade() 0.2 s on PostgreSQL, 0.6-2 s on SQLite, which rewrites both tables to drop
the column (measured 2026-12-06 on 2 cores with other test suites running alongside).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upload_tokens",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=26), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("max_size", sa.BigInteger(), nullable=False),
        sa.Column("max_files", sa.Integer(), nullable=False),
        sa.Column("files_created", sa.Integer(), nullable=False),
        sa.Column("fixed_metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_upload_tokens_token_hash")),
    )
    op.add_column("files", sa.Column("uploaded_by", sa.String(length=26), nullable=True))
    op.add_column("uploads", sa.Column("uploaded_by", sa.String(length=26), nullable=True))


def downgrade() -> None:
    # Not batch mode: SQLite (3.35+) drops a column in place, where batch mode copies the
    # table (1 s against 15 s on 200,000 rows of files and uploads).
    op.drop_column("uploads", "uploaded_by")
    op.drop_column("files", "uploaded_by")
    op.drop_table("upload_tokens")


def expected(probe: Probe) -> list[str]:
    """The upload_tokens table, a nullable uploaded_by on files and uploads; no row lost."""
    return [
        *probe.table(
            "upload_tokens",
            columns="id tenant key_id token_hash profile max_size max_files files_created "
            "fixed_metadata created_at expires_at revoked_at",
            indexes="uq_upload_tokens_token_hash",
        ),
        *probe.column("files", "uploaded_by", nullable=True, length=26),
        *probe.column("uploads", "uploaded_by", nullable=True, length=26),
        *probe.no_rows("files", "uploaded_by IS NOT NULL"),
        *probe.rows_kept("files", "uploads"),
    ]
