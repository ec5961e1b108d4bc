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
Expected duration: 0.1 s on 200,000 rows of files, 4,000 of them quarantined, on either
database; the UPDATE grows with the quarantined files (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

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


def expected(probe: Probe) -> list[str]:
    """Files waiting for inspection carry their received digest and size; inspected ones
    carry none; no row lost."""
    return [
        *probe.column("files", "received_sha256", nullable=True),
        *probe.column("files", "received_size", nullable=True),
        *probe.column("files", "sanitized", nullable=True),
        *probe.no_rows(
            "files",
            "state = 'quarantined' AND verdict IS NULL AND (received_sha256 IS NULL "
            "OR received_sha256 <> sha256 OR received_size IS NULL OR received_size <> size)",
        ),
        *probe.no_rows(
            "files",
            "(state <> 'quarantined' OR verdict IS NOT NULL) AND received_sha256 IS NOT NULL",
        ),
        *probe.rows_kept("files"),
    ]
