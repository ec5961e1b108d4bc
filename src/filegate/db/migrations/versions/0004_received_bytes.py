"""Files keep what was received beside what is served: received sha256 and size, sanitising.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Owner: filegate core team (real-world files issue)
Expected result: ``files`` gains nullable ``received_sha256``, ``received_size`` and
``sanitized`` (a JSON list of what the sanitised copy changed). Files not yet inspected get
``received_* = sha256, size`` (their bytes are still the upload's); files already inspected keep
NULL, because an earlier sanitised copy may have replaced ``sha256`` and the upload's digest is
gone. No other row or table changes. Seconds for a million files on PostgreSQL (one UPDATE over
the quarantined ones).
Rollback: downgrade() drops the three columns; the served ``sha256`` and ``size`` stay, the
received digest of sanitised files is lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch_op:
        batch_op.add_column(sa.Column("received_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("received_size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("sanitized", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE files SET received_sha256 = sha256, received_size = size "
        "WHERE state = 'quarantined' AND verdict IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("files") as batch_op:
        batch_op.drop_column("sanitized")
        batch_op.drop_column("received_size")
        batch_op.drop_column("received_sha256")
