"""The status page's memory: per-minute signals by release, the processes that served, and
the request each job came from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Owner: filegate core team (production-checks issue)
Expected result: two new empty tables, ``signal_minutes`` and ``processes``; ``jobs`` gains a
nullable ``request_id`` column (NULL on every existing row, so old jobs log without one). No
existing row changes. Adding a nullable column is a catalogue change on both databases
(milliseconds on any size; SQLite adds it with ALTER TABLE, no rebuild, as measured).
Rollback: downgrade() drops both tables and the column. The status page then forgets its
history (it starts again from the next minute after an upgrade) and the job ledger's request
ids are lost; files, keys, uploads and jobs are untouched.
Expected duration: 0.03 s on 200,000 rows of jobs on PostgreSQL, 0.02 s on SQLite (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_minutes",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release", sa.String(length=128), nullable=False),
        sa.Column("signal", sa.String(length=48), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "release", "signal", "label", name="pk_signal_minutes"),
    )
    op.create_table(
        "processes",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("release", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_processes"),
    )
    op.create_index("ix_processes_last_seen_at", "processes", ["last_seen_at"])
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("request_id")
    op.drop_index("ix_processes_last_seen_at", table_name="processes")
    op.drop_table("processes")
    op.drop_table("signal_minutes")


def expected(probe: Probe) -> list[str]:
    """The two status tables; ``jobs.request_id`` NULL on every old job; no row lost."""
    return [
        *probe.table("signal_minutes", columns="minute release signal label count total"),
        *probe.table(
            "processes",
            columns="id release role hostname pid started_at last_seen_at",
            indexes="ix_processes_last_seen_at",
        ),
        *probe.column("jobs", "request_id", nullable=True),
        *probe.no_rows("jobs", "request_id IS NOT NULL"),
        *probe.rows_kept("jobs", "files", "webhook_events"),
    ]
