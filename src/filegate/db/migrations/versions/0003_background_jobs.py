"""Background work: the job ledger, webhooks, the import journal and the pending verdict.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Owner: filegate core team (background-work issue)
Expected result: new empty tables ``jobs``, ``webhook_endpoints``, ``webhook_events`` and
``imports``; ``files`` gains a nullable ``verdict`` column (NULL on every existing row). Existing
files keep their state; quarantined ones are picked up by the first ``rescan`` run.
Rollback: downgrade() drops the four tables and the column. Webhook endpoints and their
secrets are lost (re-create them), the import journal is lost (a re-run would import the same
sources again), and a file inspected but not yet promoted is inspected again by the old worker.
Expected duration: 0.04 s on 200,000 rows of files on PostgreSQL, 0.02 s on SQLite: a
nullable column rewrites no row (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files") as batch_op:
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("kind", "subject", name="uq_jobs_kind_subject"),
    )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.create_index("ix_jobs_state_run_after", ["state", "run_after"], unique=False)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_endpoints_tenant"), ["tenant"], unique=False)
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("endpoint_id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=26), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("endpoint_id", "type", "subject", name="uq_webhook_events_endpoint_id"),
    )
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.create_index("ix_webhook_events_state", ["state"], unique=False)
    op.create_table(
        "imports",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
        sa.UniqueConstraint("tenant", "source", "sha256", name="uq_imports_tenant"),
    )


def downgrade() -> None:
    op.drop_table("imports")
    with op.batch_alter_table("webhook_events") as batch_op:
        batch_op.drop_index("ix_webhook_events_state")
    op.drop_table("webhook_events")
    with op.batch_alter_table("webhook_endpoints") as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_endpoints_tenant"))
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_state_run_after")
    op.drop_table("jobs")
    with op.batch_alter_table("files") as batch_op:
        batch_op.drop_column("verdict")


def expected(probe: Probe) -> list[str]:
    """Four new tables with their keys; ``files.verdict`` NULL everywhere; no row lost."""
    return [
        *probe.table(
            "jobs",
            columns="id kind subject state attempts run_after outcome",
            indexes="uq_jobs_kind_subject ix_jobs_state_run_after",
        ),
        *probe.table("webhook_endpoints", indexes="ix_webhook_endpoints_tenant"),
        *probe.table(
            "webhook_events",
            columns="id endpoint_id type subject state attempts",
            indexes="uq_webhook_events_endpoint_id ix_webhook_events_state",
        ),
        *probe.table("imports", indexes="uq_imports_tenant"),
        *probe.column("files", "verdict", nullable=True),
        *probe.no_rows("files", "verdict IS NOT NULL"),
        *probe.rows_kept("files", "api_keys", "uploads"),
    ]
