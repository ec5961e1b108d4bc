"""Create the uploads table for resumable (tus) uploads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Owner: filegate core team (tus issue)
Expected result: an empty ``uploads`` table with an index on (state, expires_at); the files and
api_keys tables and their rows are untouched.
Rollback: downgrade() drops ``uploads``; uploads in progress are lost (clients start again) and
their partial bytes under ``<storage>/uploads`` become orphans for reconciliation. Completed
uploads are already files and are not affected.
Expected duration: 0.03 s on 200,000 rows of files, which it does not touch, on either
database (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata_header", sa.String(length=4096), nullable=False),
        sa.Column("filename", sa.String(length=1024), nullable=True),
        sa.Column("filetype", sa.String(length=255), nullable=True),
        sa.Column("concat", sa.String(length=8), nullable=True),
        sa.Column("parts", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    with op.batch_alter_table("uploads") as batch_op:
        batch_op.create_index("ix_uploads_state_expires_at", ["state", "expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("uploads") as batch_op:
        batch_op.drop_index("ix_uploads_state_expires_at")
    op.drop_table("uploads")


def expected(probe: Probe) -> list[str]:
    """The uploads table with its index; files and keys keep every row."""
    return [
        *probe.table(
            "uploads",
            columns="id tenant profile length offset metadata_header filename filetype concat parts state expires_at created_at updated_at",
            indexes="ix_uploads_state_expires_at",
        ),
        *probe.rows_kept("files", "api_keys"),
    ]
