"""Response bodies, as the OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from filegate.domain import EventType, FileRecord, FileState, WebhookEndpointRecord


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


class WebhookIn(BaseModel):
    # Unknown fields are refused: a "tenant" in the body must not look as if it were obeyed.
    model_config = ConfigDict(extra="forbid")

    url: str
    events: list[str] | None = Field(
        default=None, max_length=len(EventType), description="Default: every event type."
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[EventType]
    created_at: datetime

    @classmethod
    def of(cls, record: WebhookEndpointRecord) -> WebhookOut:
        return cls(
            id=record.id,
            url=record.url,
            events=sorted(record.events),
            created_at=record.created_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret; shown only in this response.")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
