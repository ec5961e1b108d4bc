"""The review console's audit log: one append-only row per operator action on a file.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Owner: filegate core team (browser uploads issue, #19: the quarantine review console)
Expected result: one new empty table ``review_audit`` with indexes on ``file_id`` and on
(tenant, id), and triggers that refuse every UPDATE and DELETE of its rows (on PostgreSQL a
trigger function, ``review_audit_append_only()``, which TRUNCATE is refused by too). No
existing row changes; creating an empty table is milliseconds on any database size.
Rollback: downgrade() drops the triggers, the function and the table: the record of who
released, rejected, deleted or re-inspected which file, and why, is lost (export it first with
``GET /admin/audit.csv``). Files, keys, uploads and jobs are untouched.
Expected duration: 0.03 s on 200,000 rows of files, which it does not touch, on either database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLE = "review_audit"
REFUSAL = "review_audit is append-only: its rows are never changed or deleted"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER review_audit_no_{verb.lower()} BEFORE {verb} ON {TABLE}
BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_FUNCTION = f"""CREATE FUNCTION review_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
END
$$"""
POSTGRES_TRIGGERS = [
    f"CREATE TRIGGER review_audit_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION review_audit_append_only()",
    f"CREATE TRIGGER review_audit_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION review_audit_append_only()",
]


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("actor_key_id", sa.String(length=26), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.String(length=26), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("before_state", sa.String(length=16), nullable=False),
        sa.Column("after_state", sa.String(length=16), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_audit")),
    )
    op.create_index("ix_review_audit_file_id", TABLE, ["file_id"], unique=False)
    op.create_index("ix_review_audit_tenant_id", TABLE, ["tenant", "id"], unique=False)
    if op.get_context().dialect.name == "postgresql":
        for statement in [POSTGRES_FUNCTION, *POSTGRES_TRIGGERS]:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    # Dropping the table drops its triggers on both databases; the function stays otherwise.
    op.drop_index("ix_review_audit_tenant_id", table_name=TABLE)
    op.drop_index("ix_review_audit_file_id", table_name=TABLE)
    op.drop_table(TABLE)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS review_audit_append_only()")


def expected(probe: Probe) -> list[str]:
    """The review_audit table with its indexes; no file row lost."""
    return [
        *probe.table(
            TABLE,
            columns="id at tenant actor_key_id actor action file_id reason before_state after_state extra",
            indexes="ix_review_audit_file_id ix_review_audit_tenant_id",
        ),
        *probe.rows_kept("files"),
    ]
