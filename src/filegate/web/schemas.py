"""Response bodies, as the OpenAPI document describes them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from filegate.domain import (
    Action,
    EventType,
    FileRecord,
    FileState,
    Finding,
    WebhookEndpointRecord,
)


class FindingOut(BaseModel):
    code: str
    message: str


class FindingExplained(FindingOut):
    """A finding as an admin sees it: where the evidence is and which rule decided."""

    where: str | None = Field(description="The evidence's place: part, object, offset, member.")
    action: Action = Field(description="What the profile does with this finding today.")
    rule: str = Field(description="The setting that decides it, to change for a false positive.")


class FileOut(BaseModel):
    id: str
    tenant: str
    name: str
    size: int = Field(description="The served bytes' size (the sanitised copy's, if any).")
    sha256: str = Field(description="The served bytes' digest, also the download's ETag.")
    received_size: int | None = Field(
        description="The upload's size as received; null if inspected before it was recorded."
    )
    received_sha256: str | None = Field(description="The upload's digest as received.")
    sanitized: bool = Field(description="A sanitised copy is served instead of the upload.")
    sanitize_changes: list[str] = Field(description="What the sanitised copy changed.")
    declared_type: str | None
    detected_type: str | None
    profile: str
    state: FileState
    findings: list[FindingExplained | FindingOut]
    created_at: datetime
    updated_at: datetime
    inspected_at: datetime | None
    uploaded_by: str | None = Field(
        default=None,
        description="The id of the upload token, or of the API key, that uploaded it; null "
        "for imported files and files uploaded before migration 0009.",
    )

    @classmethod
    def of(
        cls, record: FileRecord, explained: list[tuple[Finding, Action, str]] | None = None
    ) -> FileOut:
        """The record; with ``explained`` (for admins), findings carry evidence and rule."""
        findings: list[FindingExplained | FindingOut] = (
            [FindingOut(code=f.code, message=f.message) for f in record.findings]
            if explained is None
            else [
                FindingExplained(
                    code=f.code, message=f.message, where=f.where, action=action, rule=rule
                )
                for f, action, rule in explained
            ]
        )
        return cls(
            id=record.id,
            tenant=record.tenant,
            name=record.display_name,
            size=record.size,
            sha256=record.sha256,
            received_size=record.received_size,
            received_sha256=record.received_sha256,
            sanitized=bool(record.sanitized),
            sanitize_changes=list(record.sanitized),
            declared_type=record.declared_type,
            detected_type=record.detected_type,
            profile=record.profile,
            state=record.state,
            findings=findings,
            created_at=record.created_at,
            updated_at=record.updated_at,
            inspected_at=record.inspected_at,
            uploaded_by=record.uploaded_by,
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


class QuotaOut(BaseModel):
    used: int
    limit: int | None = Field(description="null: no limit.")


class UsageOut(BaseModel):
    tenant: str
    stored_bytes: QuotaOut = Field(description="Bytes of the tenant's files, in every state.")
    stored_files: QuotaOut
    in_flight_bytes: QuotaOut = Field(
        description="Declared lengths of resumable uploads under way (a deferred length counts "
        "as its profile's max_size)."
    )
    in_flight_uploads: QuotaOut
    uploads_per_minute: int | None = Field(description="The rate limit on new uploads.")
    uploads_remaining: int | None = Field(
        description="New uploads the tenant may still start in this minute's window."
    )
    requests_per_second: int | None = Field(description="The rate limit per API key.")
    rate_limits_shared: bool = Field(
        description="true: counted in Redis across every API process; false: per process."
    )
