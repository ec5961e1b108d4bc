"""Files: the uploaded files, their verdicts and states."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from filegate.db.models import (
    FileRow,
)
from filegate.db.repository.base import rows_changed
from filegate.domain import (
    FileRecord,
    FileState,
    Finding,
    utcnow,
)


def _file_record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        tenant=row.tenant,
        original_name=row.original_name,
        display_name=row.display_name,
        size=row.size,
        sha256=row.sha256,
        declared_type=row.declared_type,
        detected_type=row.detected_type,
        profile=row.profile,
        state=FileState(row.state),
        findings=tuple(Finding.of(f) for f in row.findings),
        created_at=row.created_at,
        updated_at=row.updated_at,
        inspected_at=row.inspected_at,
        received_sha256=row.received_sha256,
        received_size=row.received_size,
        sanitized=tuple(row.sanitized or ()),
        uploaded_by=row.uploaded_by,
    )


def file_query(file_id: str, tenant: str | None = None) -> Select[FileRow]:
    query = select(FileRow).where(FileRow.id == file_id)
    return query if tenant is None else query.where(FileRow.tenant == tenant)


def page_query(
    tenant: str, *, state: FileState | None, before: str | None, limit: int
) -> Select[FileRow]:
    query = select(FileRow).where(FileRow.tenant == tenant)
    if state is not None:
        query = query.where(FileRow.state == state.value)
    if before is not None:
        query = query.where(FileRow.id < before)
    return query.order_by(FileRow.id.desc()).limit(limit)


def stored_query(tenant: str) -> Select[int, int]:
    return select(func.count(), func.coalesce(func.sum(FileRow.size), 0)).where(
        FileRow.tenant == tenant
    )


class Files:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: FileRecord) -> None:
        self.session.add(
            FileRow(
                id=record.id,
                tenant=record.tenant,
                original_name=record.original_name,
                display_name=record.display_name,
                size=record.size,
                sha256=record.sha256,
                declared_type=record.declared_type,
                detected_type=record.detected_type,
                profile=record.profile,
                state=record.state.value,
                findings=[f.as_dict() for f in record.findings],
                created_at=record.created_at,
                updated_at=record.updated_at,
                inspected_at=record.inspected_at,
                received_sha256=record.received_sha256 or record.sha256,
                received_size=record.size if record.received_size is None else record.received_size,
                uploaded_by=record.uploaded_by,
            )
        )

    def get(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        """The file, or None when missing or owned by another tenant (callers can't tell which)."""
        row = self.session.scalars(file_query(file_id, tenant)).one_or_none()
        return _file_record(row) if row else None

    def page(
        self, tenant: str, *, state: FileState | None, before: str | None, limit: int
    ) -> list[FileRecord]:
        """Newest first; ids are ULIDs, so ``before`` (the last id seen) is the cursor."""
        query = page_query(tenant, state=state, before=before, limit=limit)
        return [_file_record(row) for row in self.session.scalars(query)]

    def stored(self, tenant: str) -> tuple[int, int]:
        """How many files the tenant keeps, and their bytes."""
        files, size = self.session.execute(stored_query(tenant)).one()
        return int(files), int(size)

    def delete(self, file_id: str, tenant: str) -> bool:
        result = self.session.execute(
            delete(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant)
        )
        return rows_changed(result) > 0

    def record_verdict(
        self,
        file_id: str,
        *,
        state: FileState,
        findings: Sequence[Finding],
        detected_type: str | None,
        size: int | None = None,
        sha256: str | None = None,
        sanitized: Sequence[str] = (),
    ) -> bool:
        """Store an inspection's verdict for the promote job; False if one is already stored.

        The file stays quarantined until ``promote``. ``size`` and ``sha256`` change when a
        sanitised copy replaces the upload, and ``sanitized`` says what it changed.
        """
        now = utcnow()
        values: dict[str, object] = {
            "verdict": state.value,
            "findings": [f.as_dict() for f in findings],
            "detected_type": detected_type,
            "inspected_at": now,
            "updated_at": now,
        }
        if size is not None and sha256 is not None:
            values.update(size=size, sha256=sha256, sanitized=list(sanitized))
        result = self.session.execute(
            update(FileRow)
            .where(
                FileRow.id == file_id,
                FileRow.state == FileState.QUARANTINED.value,
                FileRow.verdict.is_(None),
            )
            .values(**values)
        )
        return rows_changed(result) > 0

    def with_verdict(self, file_id: str) -> tuple[FileRecord | None, FileState | None]:
        """The file and the verdict stored for it but not yet acted on (one query)."""
        row = self.session.scalars(select(FileRow).where(FileRow.id == file_id)).one_or_none()
        if row is None:
            return None, None
        return _file_record(row), FileState(row.verdict) if row.verdict else None

    def promote(self, file_id: str) -> bool:
        """Move a quarantined file to its stored verdict; False if done already (or no verdict)."""
        result = self.session.execute(
            update(FileRow)
            .where(
                FileRow.id == file_id,
                FileRow.state == FileState.QUARANTINED.value,
                FileRow.verdict.is_not(None),
            )
            .values(state=FileRow.verdict, updated_at=utcnow())
        )
        return rows_changed(result) > 0

    def mark_lost(self, file_id: str, finding: Finding) -> bool:
        """A clean file whose bytes are gone from storage: reject it rather than serve a 503."""
        result = self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.CLEAN.value)
            .values(
                state=FileState.REJECTED.value,
                verdict=FileState.REJECTED.value,
                findings=FileRow.findings,
                updated_at=utcnow(),
            )
        )
        if rows_changed(result):
            row = self.session.get(FileRow, file_id)
            if row is not None:
                row.findings = [*row.findings, finding.as_dict()]
        return rows_changed(result) > 0

    def purge(self, file_id: str) -> bool:
        """Delete a rejected file's row (its bytes go first); guarded by its state."""
        result = self.session.execute(
            delete(FileRow).where(FileRow.id == file_id, FileRow.state == FileState.REJECTED.value)
        )
        return rows_changed(result) > 0

    def rejected_before(self, cutoff: datetime, limit: int) -> list[str]:
        query = (
            select(FileRow.id)
            .where(FileRow.state == FileState.REJECTED.value, FileRow.updated_at < cutoff)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def states(self, ids: Collection[str]) -> dict[str, FileState]:
        """The state of each id that has a row (for reconciliation)."""
        if not ids:
            return {}
        query = select(FileRow.id, FileRow.state).where(FileRow.id.in_(list(ids)))
        return {row.id: FileState(row.state) for row in self.session.execute(query)}

    def ids_in_state(self, state: FileState, after: str, limit: int) -> list[str]:
        query = (
            select(FileRow.id)
            .where(FileRow.state == state.value, FileRow.id > after)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def waiting(self, limit: int) -> list[tuple[str, bool]]:
        """Quarantined files as (id, has a verdict): each needs an inspect or a promote job."""
        query = (
            select(FileRow.id, FileRow.verdict)
            .where(FileRow.state == FileState.QUARANTINED.value)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return [(row.id, row.verdict is not None) for row in self.session.execute(query)]

    def note_findings(self, file_id: str, findings: Sequence[Finding]) -> None:
        """Show why a file is still quarantined (e.g. the scanner is down) without deciding."""
        self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.QUARANTINED.value)
            .values(findings=[f.as_dict() for f in findings], updated_at=utcnow())
        )
