"""Create the files and api_keys tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Owner: filegate core team (foundation issue)
Expected result: empty tables ``files`` and ``api_keys`` with their indexes; no data moves.
Rollback: downgrade() drops both tables, and with them every file record and API key; the
stored objects on disk are left alone (reconciliation reports them as orphans).
Expected duration: 0.05 s on 0 rows: it creates the tables, on either database (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant"), ["tenant"], unique=False)

    op.create_table(
        "files",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=1024), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("declared_type", sa.String(length=255), nullable=True),
        sa.Column("detected_type", sa.String(length=255), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    with op.batch_alter_table("files") as batch_op:
        batch_op.create_index("ix_files_state", ["state"], unique=False)
        batch_op.create_index("ix_files_tenant_id", ["tenant", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("files") as batch_op:
        batch_op.drop_index("ix_files_tenant_id")
        batch_op.drop_index("ix_files_state")
    op.drop_table("files")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant"))
    op.drop_table("api_keys")


def expected(probe: Probe) -> list[str]:
    """Both tables, with every column and index upgrade() creates."""
    return [
        *probe.table(
            "files",
            columns="id tenant original_name display_name size sha256 declared_type detected_type profile state findings created_at updated_at inspected_at",
            indexes="ix_files_state ix_files_tenant_id",
        ),
        *probe.table(
            "api_keys",
            columns="id tenant name prefix key_hash scopes created_at revoked_at",
            indexes="ix_api_keys_tenant uq_api_keys_key_hash",
        ),
    ]
