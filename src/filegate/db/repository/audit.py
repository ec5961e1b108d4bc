"""The review audit log: rows are added and read, never updated or deleted (0010's triggers
refuse both, so not even a bug here could)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from filegate.db.models import ReviewAuditRow
from filegate.domain import AuditRecord, FileState, ReviewAction


def _audit_record(row: ReviewAuditRow) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor_key_id=row.actor_key_id,
        actor=row.actor,
        action=ReviewAction(row.action),
        file_id=row.file_id,
        tenant=row.tenant,
        reason=row.reason,
        before=FileState(row.before_state),
        after=FileState(row.after_state) if row.after_state else None,
        extra=dict(row.extra),
    )


def file_audit_query(file_id: str, tenant: str, limit: int) -> Select[ReviewAuditRow]:
    return (
        select(ReviewAuditRow)
        .where(ReviewAuditRow.file_id == file_id, ReviewAuditRow.tenant == tenant)
        .order_by(ReviewAuditRow.id.desc())
        .limit(limit)
    )


def audit_page_query(tenant: str, after: str | None, limit: int) -> Select[ReviewAuditRow]:
    query = select(ReviewAuditRow).where(ReviewAuditRow.tenant == tenant)
    if after is not None:
        query = query.where(ReviewAuditRow.id > after)
    return query.order_by(ReviewAuditRow.id).limit(limit)


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: AuditRecord) -> None:
        self.session.add(
            ReviewAuditRow(
                id=record.id,
                at=record.at,
                tenant=record.tenant,
                actor_key_id=record.actor_key_id,
                actor=record.actor,
                action=record.action.value,
                file_id=record.file_id,
                reason=record.reason,
                before_state=record.before.value,
                after_state=record.after.value if record.after else None,
                extra=dict(record.extra),
            )
        )

    def for_file(self, file_id: str, tenant: str, limit: int) -> list[AuditRecord]:
        """The file's rows, newest first."""
        rows = self.session.scalars(file_audit_query(file_id, tenant, limit))
        return [_audit_record(row) for row in rows]

    def recent(self, tenant: str, limit: int) -> list[AuditRecord]:
        """The tenant's newest rows, newest first."""
        query = (
            select(ReviewAuditRow)
            .where(ReviewAuditRow.tenant == tenant)
            .order_by(ReviewAuditRow.id.desc())
            .limit(limit)
        )
        return [_audit_record(row) for row in self.session.scalars(query)]

    def page(self, tenant: str, *, after: str | None, limit: int) -> list[AuditRecord]:
        """The tenant's rows, oldest first, after the id ``after`` (the export's cursor)."""
        rows = self.session.scalars(audit_page_query(tenant, after, limit))
        return [_audit_record(row) for row in rows]
