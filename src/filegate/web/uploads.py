"""POST /v1/files: stream a multipart or raw body into quarantine, then hand it to inspection."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from filegate import faults, metrics, signals
from filegate.blocking import run_blocking
from filegate.domain import FileRecord, InspectionPolicy, Principal
from filegate.errors import ErrorCode, FilegateError
from filegate.services.quotas import admit_upload, check_room
from filegate.services.ratelimits import RateLimiter
from filegate.services.runtime import Runtime
from filegate.services.upload_tokens import check_profile, size_limit
from filegate.services.uploads import (
    IncomingFile,
    UploadMeta,
    new_file_record,
    register_upload,
    too_large,
)
from filegate.web.body import body_chunks
from filegate.web.capacity import UploadSlots
from filegate.web.deps import LimiterDep, RuntimeDep, TokenUploader
from filegate.web.headers import disposition_filename
from filegate.web.multipart import MultipartReceiver
from filegate.web.schemas import FileOut
from filegate.web.upload_tokens import counted_upload

log = structlog.get_logger(__name__)
# Where direct uploads are posted; the body limit for small JSON requests does not apply here.
PATH = "/v1/files"

router = APIRouter(tags=["files"])

# Boundaries, part headers and small fields on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "multipart/form-data with one `file` part (and an optional `profile` field sent "
            "before it), or the raw bytes with `Content-Disposition: attachment; filename=...`."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "profile": {"type": "string"},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    PATH,
    status_code=202,
    response_model=FileOut,
    summary="Upload a file into quarantine",
    openapi_extra=_UPLOAD_BODY,
)
async def upload_file(
    request: Request,
    runtime: RuntimeDep,
    limiter: LimiterDep,
    principal: TokenUploader,
    profile: Annotated[str | None, Query(max_length=64)] = None,
) -> JSONResponse:
    """Answers 202 once the bytes are durable in quarantine; inspection runs afterwards."""
    started = time.perf_counter()
    slots: UploadSlots = request.app.state.upload_slots
    try:
        with slots.take():
            async with counted_upload(runtime, principal):
                record = await _receive(request, runtime, limiter, principal, profile)
            faults.maybe_fail("upload.error")  # after the body: the client gets its 500
    except FilegateError as exc:
        metrics.UPLOADS.labels(outcome=exc.code.value).inc()
        signals.count(signals.UPLOADS, exc.code.value)
        log.info("upload.refused", code=exc.code.value, tenant=principal.tenant)
        raise
    metrics.UPLOADS.labels(outcome="accepted").inc()
    signals.count(signals.UPLOADS, "accepted")
    signals.observe(signals.UPLOAD_SECONDS, time.perf_counter() - started)
    request.state.file_id = record.id
    body = FileOut.of(record).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/files/{record.id}"})


@dataclass
class _Received:
    incoming: IncomingFile
    name: str | None
    declared_type: str | None
    policy: InspectionPolicy


class _ProfileChooser:
    """Opens the quarantine writer once the profile (and so the size cap) is known."""

    def __init__(self, runtime: Runtime, principal: Principal, query_profile: str | None) -> None:
        self.runtime = runtime
        self.principal = principal
        self.query_profile = query_profile
        self.policy: InspectionPolicy | None = None

    def open(self, form_profile: str | None) -> IncomingFile:
        if form_profile and self.query_profile and form_profile != self.query_profile:
            raise FilegateError(
                ErrorCode.INVALID_REQUEST, "The profile field and ?profile= disagree."
            )
        chosen = check_profile(self.principal, form_profile or self.query_profile)
        self.policy = self.runtime.settings.profile(chosen)
        limit = size_limit(self.principal, self.policy.max_size)
        return IncomingFile(self.runtime.storage, limit)


def _early_limit(runtime: Runtime, query_profile: str | None, *, is_form: bool) -> int:
    """The most a declared Content-Length may say before a byte is read. A form may name its
    profile in a field that comes later, so without ?profile= it may be as large as the
    largest profile allows; the chosen profile's own cap is enforced while the file streams."""
    settings = runtime.settings
    if not is_form:
        return settings.profile(query_profile).max_size
    if query_profile is None:
        return settings.largest_max_size + MULTIPART_OVERHEAD
    return settings.profile(query_profile).max_size + MULTIPART_OVERHEAD


async def _receive(
    request: Request,
    runtime: Runtime,
    limiter: RateLimiter,
    principal: Principal,
    profile: str | None,
) -> FileRecord:
    tenant = principal.tenant
    content_type = request.headers.get("content-type", "")
    is_form = content_type.lower().startswith("multipart/form-data")
    if not is_form and content_type.lower().startswith("multipart/"):
        raise FilegateError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Use multipart/form-data or a raw body."
        )
    # A token's profile is known before a byte is read; a form may still name one (checked).
    early = _early_limit(runtime, check_profile(principal, profile), is_form=is_form)
    if principal.grant is not None:
        early = min(early, principal.grant.max_size + (MULTIPART_OVERHEAD if is_form else 0))
    declared = _check_content_length(request, early)
    # A form's length includes its boundaries: only a raw body's length is the file's size.
    await run_blocking(
        admit_upload,
        runtime.db,
        runtime.settings,
        limiter,
        tenant,
        0 if is_form else declared,
        resumable=False,
    )
    chooser = _ProfileChooser(runtime, principal, profile)
    receive = _receive_form if is_form else _receive_raw
    received = await receive(request, chooser)
    fixed = principal.grant.fixed_metadata if principal.grant is not None else {}
    meta = UploadMeta(
        tenant=tenant,
        original_name=fixed.get("filename", received.name),
        declared_type=fixed.get("filetype", received.declared_type),
        profile=received.policy.name,
        uploaded_by=principal.key_id,
    )
    sha256 = await _commit(runtime, tenant, received.incoming)
    record = new_file_record(received.incoming.id, received.incoming.size, sha256, meta)
    return await run_blocking(
        lambda: register_upload(
            runtime.db, runtime.storage, runtime.queue, record, channel="direct"
        )
    )


async def _receive_form(request: Request, chooser: _ProfileChooser) -> _Received:
    settings = chooser.runtime.settings
    receiver = MultipartReceiver(
        request.headers["content-type"], chooser.open, settings.max_multipart_header_bytes
    )
    try:
        async for chunk in body_chunks(
            request, settings.upload_read_timeout, settings.upload_min_bytes_per_second
        ):
            receiver.feed(chunk)
        incoming = receiver.finish()
    except BaseException:
        if receiver.incoming is not None:
            receiver.incoming.abort()
        raise
    assert chooser.policy is not None
    return _Received(incoming, receiver.filename, receiver.declared_type, chooser.policy)


async def _receive_raw(request: Request, chooser: _ProfileChooser) -> _Received:
    name = disposition_filename(request.headers.get("content-disposition"))
    if not name:
        raise FilegateError(
            ErrorCode.FILENAME_MISSING,
            "A raw upload needs 'Content-Disposition: attachment; filename=...'.",
        )
    incoming = chooser.open(None)
    settings = chooser.runtime.settings
    try:
        async for chunk in body_chunks(
            request, settings.upload_read_timeout, settings.upload_min_bytes_per_second
        ):
            incoming.write(chunk)
    except BaseException:
        incoming.abort()
        raise
    assert chooser.policy is not None
    declared = request.headers.get("content-type")
    return _Received(incoming, name, declared, chooser.policy)


async def _commit(runtime: Runtime, tenant: str, incoming: IncomingFile) -> str:
    """Keep the received bytes, once the tenant's quota still has room for their real size."""

    def commit() -> str:
        check_room(runtime.db, runtime.settings, tenant, incoming.size, resumable=False)
        return incoming.commit()

    try:
        return await run_blocking(commit)
    except BaseException:
        incoming.abort()
        raise


def _check_content_length(request: Request, limit: int) -> int:
    """The declared body length (0 if none); refuse a declared oversize body before reading
    it (the stream is capped anyway)."""
    header = request.headers.get("content-length")
    if header is None:
        return 0
    if not header.isdigit():
        raise FilegateError(ErrorCode.CONTENT_LENGTH_INVALID, "Content-Length is not a number.")
    if int(header) > limit:
        raise too_large(limit)
    return int(header)
