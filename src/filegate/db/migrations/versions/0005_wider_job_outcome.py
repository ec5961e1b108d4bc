"""Job outcomes up to 255 characters: a reconcile run with large counts did not fit in 64.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Owner: filegate core team (hostile-load issue)
Expected result: ``jobs.outcome`` is VARCHAR(255); every row and value is unchanged. On
PostgreSQL widening a VARCHAR is a catalogue change (no table rewrite, milliseconds on any
size); SQLite rebuilds the jobs table, seconds for a million rows.
Rollback: downgrade() narrows the column to 64 again after cutting longer outcomes to 64
characters (the outcome is a summary for people; the job's state is not touched).
Expected duration: 0.02 s on 200,000 rows of jobs on PostgreSQL; 1 s on SQLite, which
copies the table (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.alter_column(
            "outcome",
            existing_type=sa.String(length=64),
            type_=sa.String(length=255),
            existing_nullable=True,
        )


def downgrade() -> None:
    op.execute("UPDATE jobs SET outcome = substr(outcome, 1, 64) WHERE length(outcome) > 64")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.alter_column(
            "outcome",
            existing_type=sa.String(length=255),
            type_=sa.String(length=64),
            existing_nullable=True,
        )


def expected(probe: Probe) -> list[str]:
    """``jobs.outcome`` holds 255 characters; the ledger keeps every row."""
    return [
        *probe.column("jobs", "outcome", nullable=True, length=255),
        *probe.rows_kept("jobs", "files"),
    ]
