"""Upload tokens and share links indexed by expires_at, for the purge of lapsed ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Owner: filegate core team (browser uploads issue, #19: upload tokens and share links purged)
Expected result: ``upload_tokens`` has the index ``ix_upload_tokens_expires_at`` and
``share_links`` the index ``ix_share_links_expires_at``, both on (expires_at); every row is
unchanged. The daily purge's delete of tokens and links past their expiry then reads only the
rows it deletes instead of the whole table (a token is minted per page visit).
Rollback: downgrade() drops both indexes; no data is involved. On PostgreSQL both run
CONCURRENTLY, outside a transaction: writes go on while an index builds. If a build fails
half-way PostgreSQL keeps an INVALID index of that name (the rehearsal's check reports it):
drop it, then run the migration again.
Expected duration: 0.16 s on SQLite, 0.34 s on PostgreSQL, on 200,000 rows of upload_tokens
and 200,000 rows of share_links; downgrade() under 0.1 s (measured 2026-12-07 on 2 cores with
a test suite running alongside).
"""

from __future__ import annotations

from alembic import op

from filegate.db.invariants import Probe

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = {
    "upload_tokens": "ix_upload_tokens_expires_at",
    "share_links": "ix_share_links_expires_at",
}


def upgrade() -> None:
    # CONCURRENTLY cannot run inside a transaction; SQLite ignores the flag. No IF NOT EXISTS
    # on the builds: it would pass over an INVALID index that a failed build left behind.
    with op.get_context().autocommit_block():
        for table, index in INDEXES.items():
            op.create_index(index, table, ["expires_at"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for table, index in INDEXES.items():
            op.drop_index(index, table_name=table, postgresql_concurrently=True, if_exists=True)


def expected(probe: Probe) -> list[str]:
    """Both indexes, valid, and every token and link kept."""
    return [
        *probe.table("upload_tokens", indexes=INDEXES["upload_tokens"]),
        *probe.table("share_links", indexes=INDEXES["share_links"]),
        *probe.indexes_valid(),
        *probe.rows_kept(*INDEXES),
    ]
