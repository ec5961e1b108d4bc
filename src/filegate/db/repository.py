"""Repositories: the only code that speaks SQL. They take a session and return domain records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from filegate.db.models import ApiKeyRow, FileRow, UploadRow
from filegate.domain import (
    ApiKeyRecord,
    FileRecord,
    FileState,
    Finding,
    Scope,
    UploadRecord,
    UploadState,
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
        findings=tuple(Finding(code=f["code"], message=f["message"]) for f in row.findings),
        created_at=row.created_at,
        updated_at=row.updated_at,
        inspected_at=row.inspected_at,
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
            )
        )

    def get(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        """The file, or None when missing or owned by another tenant (callers can't tell which)."""
        query = select(FileRow).where(FileRow.id == file_id)
        if tenant is not None:
            query = query.where(FileRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _file_record(row) if row else None

    def page(
        self, tenant: str, *, state: FileState | None, before: str | None, limit: int
    ) -> list[FileRecord]:
        """Newest first; ids are ULIDs, so ``before`` (the last id seen) is the cursor."""
        query = select(FileRow).where(FileRow.tenant == tenant)
        if state is not None:
            query = query.where(FileRow.state == state.value)
        if before is not None:
            query = query.where(FileRow.id < before)
        query = query.order_by(FileRow.id.desc()).limit(limit)
        return [_file_record(row) for row in self.session.scalars(query)]

    def delete(self, file_id: str, tenant: str) -> bool:
        result = self.session.execute(
            delete(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def decide(
        self,
        file_id: str,
        *,
        state: FileState,
        findings: Sequence[Finding],
        detected_type: str | None,
        size: int | None = None,
        sha256: str | None = None,
    ) -> bool:
        """Move a quarantined file to its verdict; False if another worker got there first.

        ``size`` and ``sha256`` change when a sanitised copy replaces the upload.
        """
        now = utcnow()
        values: dict[str, object] = {
            "state": state.value,
            "findings": [f.as_dict() for f in findings],
            "detected_type": detected_type,
            "inspected_at": now,
            "updated_at": now,
        }
        if size is not None and sha256 is not None:
            values.update(size=size, sha256=sha256)
        result = self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.QUARANTINED.value)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def note_findings(self, file_id: str, findings: Sequence[Finding]) -> None:
        """Show why a file is still quarantined (e.g. the scanner is down) without deciding."""
        self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.QUARANTINED.value)
            .values(findings=[f.as_dict() for f in findings], updated_at=utcnow())
        )

    def quarantined_ids(self, limit: int, exclude: Collection[str] = ()) -> list[str]:
        query = select(FileRow.id).where(FileRow.state == FileState.QUARANTINED.value)
        if exclude:
            query = query.where(FileRow.id.not_in(list(exclude)))
        return list(self.session.scalars(query.order_by(FileRow.id).limit(limit)))


def _key_record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(Scope(s) for s in row.scopes.split(",") if s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        self.session.add(
            ApiKeyRow(
                id=record.id,
                tenant=record.tenant,
                name=record.name,
                prefix=record.prefix,
                key_hash=key_hash,
                scopes=",".join(sorted(s.value for s in record.scopes)),
                created_at=record.created_at,
                revoked_at=record.revoked_at,
            )
        )

    def find_active(self, key_hash: str) -> ApiKeyRecord | None:
        query = select(ApiKeyRow).where(
            ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None)
        )
        row = self.session.scalars(query).one_or_none()
        return _key_record(row) if row else None

    def all(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if tenant is not None:
            query = query.where(ApiKeyRow.tenant == tenant)
        return [_key_record(row) for row in self.session.scalars(query)]

    def revoke(self, key_id: str, when: datetime) -> bool:
        result = self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=when)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _upload_record(row: UploadRow) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        tenant=row.tenant,
        profile=row.profile,
        length=row.length,
        offset=row.offset,
        metadata_header=row.metadata_header,
        filename=row.filename,
        filetype=row.filetype,
        concat=row.concat,
        parts=tuple(row.parts or ()),
        state=UploadState(row.state),
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Uploads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: UploadRecord) -> None:
        self.session.add(
            UploadRow(
                id=record.id,
                tenant=record.tenant,
                profile=record.profile,
                length=record.length,
                offset=record.offset,
                metadata_header=record.metadata_header,
                filename=record.filename,
                filetype=record.filetype,
                concat=record.concat,
                parts=list(record.parts) if record.parts else None,
                state=record.state.value,
                expires_at=record.expires_at,
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
        )

    def get(self, upload_id: str, tenant: str | None = None) -> UploadRecord | None:
        query = select(UploadRow).where(UploadRow.id == upload_id)
        if tenant is not None:
            query = query.where(UploadRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _upload_record(row) if row else None

    def many(self, ids: Sequence[str], tenant: str) -> dict[str, UploadRecord]:
        query = select(UploadRow).where(UploadRow.id.in_(list(ids)), UploadRow.tenant == tenant)
        return {row.id: _upload_record(row) for row in self.session.scalars(query)}

    def advance(
        self,
        upload_id: str,
        *,
        expected: int,
        offset: int,
        length: int | None,
        expires_at: datetime,
    ) -> bool:
        """Record a durable offset; guarded by the offset the writer started from."""
        result = self.session.execute(
            update(UploadRow)
            .where(
                UploadRow.id == upload_id,
                UploadRow.offset == expected,
                UploadRow.state == UploadState.RECEIVING.value,
            )
            .values(offset=offset, length=length, expires_at=expires_at, updated_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_state(
        self,
        upload_id: str,
        state: UploadState,
        *,
        length: int | None = None,
        current: UploadState = UploadState.RECEIVING,
    ) -> bool:
        values: dict[str, object] = {"state": state.value, "updated_at": utcnow()}
        if length is not None:
            values.update(length=length, offset=length)
        result = self.session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id, UploadRow.state == current.value)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def waiting_finals(self, tenant: str) -> list[UploadRecord]:
        query = select(UploadRow).where(
            UploadRow.tenant == tenant,
            UploadRow.concat == "final",
            UploadRow.state == UploadState.RECEIVING.value,
        )
        return [_upload_record(row) for row in self.session.scalars(query)]
