"""Response bodies, as the OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from filegate.domain import FileRecord, FileState


class FindingOut(BaseModel):
    code: str
    message: str


class FileOut(BaseModel):
    id: str
    tenant: str
    name: str
    size: int
    sha256: str
    declared_type: str | None
    detected_type: str | None
    profile: str
    state: FileState
    findings: list[FindingOut]
    created_at: datetime
    updated_at: datetime
    inspected_at: datetime | None

    @classmethod
    def of(cls, record: FileRecord) -> FileOut:
        return cls(
            id=record.id,
            tenant=record.tenant,
            name=record.display_name,
            size=record.size,
            sha256=record.sha256,
            declared_type=record.declared_type,
            detected_type=record.detected_type,
            profile=record.profile,
            state=record.state,
            findings=[FindingOut(code=f.code, message=f.message) for f in record.findings],
            created_at=record.created_at,
            updated_at=record.updated_at,
            inspected_at=record.inspected_at,
        )


class FilePage(BaseModel):
    items: list[FileOut]
    next_cursor: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
