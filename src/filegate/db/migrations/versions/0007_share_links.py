"""Share links: a row per link, for limited downloads and revocation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Owner: filegate core team (delivery and cache rules issue)
Expected result: one new empty table ``share_links`` with an index on ``file_id``; no existing
row changes. Creating an empty table is milliseconds on any database size.
Rollback: downgrade() drops the table: every share link handed out stops working (it answers
403 link_invalid); files, keys, uploads and jobs are untouched.
Expected duration: 0.02 s on 200,000 rows of files, which it does not touch, on either database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("downloads", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_links")),
    )
    op.create_index(op.f("ix_share_links_file_id"), "share_links", ["file_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_share_links_file_id"), table_name="share_links")
    op.drop_table("share_links")


def expected(probe: Probe) -> list[str]:
    """The share_links table with its file index; no file row lost."""
    return [
        *probe.table(
            "share_links",
            columns="id file_id tenant key_id disposition max_downloads downloads created_at "
            "expires_at revoked_at",
            indexes="ix_share_links_file_id",
        ),
        *probe.rows_kept("files"),
    ]
