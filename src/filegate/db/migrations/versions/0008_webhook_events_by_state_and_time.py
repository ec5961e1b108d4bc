"""Webhook events indexed by (state, created_at), for the status page's failing endpoints.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Owner: filegate core team (database changes issue, #17)
Expected result: ``webhook_events`` has the index ``ix_webhook_events_state_created_at`` on
(state, created_at) in place of ``ix_webhook_events_state`` on (state), which it makes
redundant; every row is unchanged. The status page's query for endpoints failing in the last
day (undelivered events since a time) then reads only those events instead of the whole table
(docs/database.md: a Seq Scan on 200,000 events before).
Rollback: downgrade() builds ``ix_webhook_events_state`` again and drops the new index; no data
is involved. On PostgreSQL both run CONCURRENTLY, outside a transaction: writes go on while an
index builds. If a build fails half-way PostgreSQL keeps an INVALID index of that name (the
rehearsal's check reports it): drop it, then run the migration again.
Expected duration: 0.2 s on 200,000 rows of webhook_events on either database;
downgrade() 0.15 s (measured 2026-12-06 on 2 cores, about
twice as long with a test suite running alongside; docs/database.md).
"""

from __future__ import annotations

from alembic import op

from filegate.db.invariants import Probe

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW, OLD = "ix_webhook_events_state_created_at", "ix_webhook_events_state"


def upgrade() -> None:
    # CONCURRENTLY cannot run inside a transaction; SQLite ignores the flag. No IF NOT EXISTS
    # on the builds: it would pass over an INVALID index that a failed build left behind.
    with op.get_context().autocommit_block():
        op.create_index(
            NEW, "webhook_events", ["state", "created_at"], postgresql_concurrently=True
        )
        op.drop_index(
            OLD, table_name="webhook_events", postgresql_concurrently=True, if_exists=True
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(OLD, "webhook_events", ["state"], postgresql_concurrently=True)
        op.drop_index(
            NEW, table_name="webhook_events", postgresql_concurrently=True, if_exists=True
        )


def expected(probe: Probe) -> list[str]:
    """The new index in place of the old, valid, and every event kept."""
    return [
        *probe.table("webhook_events", indexes=NEW),
        *probe.no_index("webhook_events", OLD),
        *probe.indexes_valid(),
        *probe.rows_kept("webhook_events"),
    ]
