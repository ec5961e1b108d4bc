"""The tus 1.0.0 endpoint, ``/v1/tus/``: creation, PATCH, HEAD, termination, concatenation.

Every header is checked, and the caller authorised, before a body byte is stored. The body of
a PATCH streams into the upload's object; the offset is advanced only after fsync, so HEAD
never reports bytes that a crash could lose.
"""

from __future__ import annotations

import dataclasses
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Request, Response

from filegate import metrics, signals
from filegate.blocking import run_blocking
from filegate.domain import Principal, UploadRecord, UploadState
from filegate.errors import ErrorCode, FilegateError
from filegate.services import tus as uploads
from filegate.services.ingest import DigestCache, PatchReceiver, receive
from filegate.services.locks import Holder, UploadLocks
from filegate.services.quotas import admit_upload
from filegate.services.runtime import Runtime
from filegate.services.upload_tokens import check_profile, size_limit
from filegate.services.uploads import too_large
from filegate.tus.headers import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    OFFSET_OCTET_STREAM,
    TUS_VERSION,
    Checksum,
    Concat,
    format_metadata,
    parse_checksum,
    parse_concat,
    parse_integer,
    parse_metadata,
)
from filegate.web.body import body_chunks
from filegate.web.capacity import UploadSlots
from filegate.web.deps import TokenUploader, get_limiter, get_runtime
from filegate.web.problems import STATUS
from filegate.web.upload_tokens import counted_upload
from filegate.web.urls import absolute_url

log = structlog.get_logger(__name__)
router = APIRouter(tags=["tus"])
BASE = "/v1/tus/"


class TusState:
    """Per-process tus state: the upload locks, and the running sha256 of uploads written here."""

    def __init__(self, locks: UploadLocks) -> None:
        self.locks = locks
        self.digests = DigestCache()


def tus_state(request: Request) -> TusState:
    state = request.app.state.tus
    assert isinstance(state, TusState)
    return state


def _upload_slots(request: Request) -> UploadSlots:
    slots = request.app.state.upload_slots
    assert isinstance(slots, UploadSlots)
    return slots


def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


def _require_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise FilegateError(
            ErrorCode.TUS_VERSION_UNSUPPORTED,
            f"This server speaks tus {TUS_VERSION} only.",
            headers={"Tus-Version": TUS_VERSION},
        )


def _expires(record: UploadRecord) -> str:
    return format_datetime(record.expires_at, usegmt=True)


@router.options(BASE, include_in_schema=False)
@router.options(BASE + "{upload_id}", include_in_schema=False)
async def options(request: Request) -> Response:
    """Capabilities; tus says OPTIONS ignores Tus-Resumable."""
    settings = get_runtime(request).settings
    headers = _tus_headers(
        **{
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(EXTENSIONS),
            "Tus-Max-Size": str(settings.largest_max_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        }
    )
    return Response(status_code=204, headers=headers)


@router.post(BASE, summary="Create a resumable upload (tus)", status_code=201)
async def create(request: Request, principal: TokenUploader) -> Response:
    return await _create(request, principal)


@router.head(BASE + "{upload_id}", summary="A resumable upload's offset (tus)")
async def head(upload_id: str, request: Request, principal: TokenUploader) -> Response:
    _require_version(request)
    runtime = get_runtime(request)
    record = await _own_upload(runtime, principal, upload_id)
    if _received_but_open(record):
        record = await _finish_received(request, runtime, record)
    return Response(status_code=200, headers=_head_headers(record))


@router.patch(
    BASE + "{upload_id}", summary="Append bytes to a resumable upload (tus)", status_code=204
)
async def patch(upload_id: str, request: Request, principal: TokenUploader) -> Response:
    return await _patch(upload_id, request, principal)


@router.delete(BASE + "{upload_id}", summary="Terminate a resumable upload (tus)", status_code=204)
async def delete(upload_id: str, request: Request, principal: TokenUploader) -> Response:
    _require_version(request)
    runtime = get_runtime(request)
    # Check the tenant before taking the lock: a stranger must not disturb a PATCH.
    await _own_upload(runtime, principal, upload_id)
    async with tus_state(request).locks.hold(upload_id):
        await run_blocking(
            uploads.terminate, runtime.db, runtime.storage, principal.tenant, upload_id
        )
    return Response(status_code=204, headers=_tus_headers())


async def _own_upload(runtime: Runtime, principal: Principal, upload_id: str) -> UploadRecord:
    """The tenant's upload; for an upload token, only one it created."""
    return await run_blocking(
        lambda: uploads.get_upload(runtime.db, principal.tenant, upload_id, caller=principal)
    )


def _received_but_open(record: UploadRecord) -> bool:
    return (
        record.state is UploadState.RECEIVING
        and not record.is_final
        and record.length is not None
        and record.offset == record.length
    )


async def _finish_received(request: Request, runtime: Runtime, record: UploadRecord) -> Any:
    """Every byte is durable but completion was cut short (a crash, or Upload-Length: 0)."""
    async with tus_state(request).locks.hold(record.id):
        record = await run_blocking(uploads.reload, runtime.db, record.id)
        if _received_but_open(record):
            await run_blocking(
                uploads.finish_received, runtime.db, runtime.storage, runtime.queue, record
            )
            await _assemble_ready(request, runtime, record)
            record = await run_blocking(uploads.reload, runtime.db, record.id)
    return record


async def _assemble_ready(request: Request, runtime: Runtime, record: UploadRecord) -> None:
    """Join the final uploads that ``record`` (a partial that just finished) completes."""
    if not record.is_partial and not record.is_final:
        return
    ready = await run_blocking(uploads.ready_finals, runtime.db, record.tenant)
    for final in ready:
        async with tus_state(request).locks.hold(final.id):
            current = await run_blocking(uploads.reload, runtime.db, final.id)
            if current.state is not UploadState.RECEIVING:
                continue
            try:
                await run_blocking(
                    uploads.assemble,
                    runtime.db,
                    runtime.storage,
                    runtime.queue,
                    runtime.settings,
                    current,
                )
            except FilegateError as exc:
                # A final that can never be joined fails alone; a passing storage failure
                # leaves it waiting. Either is this request's answer only if it is that final.
                if STATUS[exc.code] < 500:
                    await run_blocking(uploads.fail_final, runtime.db, current, exc)
                if current.id == record.id:
                    raise
                log.warning("tus.final_not_assembled", upload_id=current.id, code=exc.code.value)


def _head_headers(record: UploadRecord) -> dict[str, str]:
    headers = _tus_headers(**{"Cache-Control": "no-store"})
    unfinished_final = record.is_final and record.state is not UploadState.COMPLETE
    if not unfinished_final:
        headers["Upload-Offset"] = str(record.offset)
    if record.length is not None:
        headers["Upload-Length"] = str(record.length)
    elif not record.is_final:
        headers["Upload-Defer-Length"] = "1"
    if record.metadata_header:
        headers["Upload-Metadata"] = record.metadata_header
    if record.concat is not None:
        headers["Upload-Concat"] = _concat_header(record)
    if record.state is UploadState.RECEIVING:
        headers["Upload-Expires"] = _expires(record)
    return headers


def _concat_header(record: UploadRecord) -> str:
    if record.is_partial:
        return "partial"
    urls = " ".join(_upload_path(part) for part in record.parts)
    return f"final;{urls}"


def _upload_path(upload_id: str) -> str:
    return BASE + upload_id


def _upload_id_of(url: str) -> str:
    path = urlsplit(url).path
    if not path.startswith(BASE):
        raise FilegateError(ErrorCode.TUS_CONCAT_INVALID, "Upload-Concat lists a foreign URL.")
    return path[len(BASE) :]


async def _create(request: Request, principal: Principal) -> Response:
    _require_version(request)
    runtime = get_runtime(request)
    headers = request.headers
    concat_header = headers.get("upload-concat")
    concat = parse_concat(concat_header, _upload_id_of) if concat_header else None
    length = _creation_length(headers.get("upload-length"), headers.get("upload-defer-length"))
    if concat is not None and concat.final and length is not None:
        raise _invalid("A final upload takes its length from its parts; omit Upload-Length.")
    if (concat is None or not concat.final) and length is None and not _deferred(headers):
        raise FilegateError(
            ErrorCode.TUS_LENGTH_REQUIRED, "Send Upload-Length or Upload-Defer-Length: 1."
        )
    new = _new_upload(principal, headers.get("upload-metadata", ""), length, concat)
    has_body = _has_body(request)
    checksum_header = headers.get("upload-checksum")
    checksum = parse_checksum(checksum_header) if has_body and checksum_header else None
    max_size = runtime.settings.profile(new.metadata.get("profile")).max_size
    max_size = size_limit(principal, max_size)
    if has_body:
        _require_patch_body_type(request)
        if concat is not None and concat.final:
            raise FilegateError(ErrorCode.TUS_FINAL_IMMUTABLE, "A final upload takes no body.")
        _check_declared_length(request, length, 0, max_size)
    if length is not None and length > max_size:
        raise too_large(max_size)  # before the quota: the upload could never fit anyway
    async with counted_upload(runtime, principal):
        if concat is None or not concat.final:  # a final's bytes are its parts', admitted
            adding = max_size if length is None else length
            await run_blocking(
                admit_upload,
                runtime.db,
                runtime.settings,
                get_limiter(request),
                principal.tenant,
                adding,
                resumable=True,
            )
        record = await run_blocking(uploads.create_upload, runtime.db, runtime.settings, new)
    request.state.file_id = record.id  # the file, once complete, has the upload's id
    out = _tus_headers(
        Location=absolute_url(request, runtime.settings, _upload_path(record.id)),
        **{"Upload-Expires": _expires(record)},
    )
    if record.is_final:
        await _assemble_ready(request, runtime, record)
    elif has_body:
        with _upload_slots(request).take():
            async with tus_state(request).locks.hold(record.id) as holder:
                record = await _write_body(request, runtime, record, holder, checksum)
        out["Upload-Offset"] = str(record.offset)
    elif _received_but_open(record):
        await _finish_received(request, runtime, record)
    metrics.UPLOADS.labels(outcome="tus_created").inc()
    return Response(status_code=201, headers=out)


def _new_upload(
    principal: Principal, metadata_header: str, length: int | None, concat: Concat | None
) -> uploads.NewUpload:
    """The upload to create; an upload token's is held to its grant, and its fixed metadata
    replaces the browser's values for the same keys."""
    metadata = parse_metadata(metadata_header)
    grant = principal.grant
    if grant is not None:
        if concat is not None:
            raise FilegateError(
                ErrorCode.FORBIDDEN,
                "An upload token cannot concatenate uploads (Upload-Concat): send each file "
                "as one upload.",
            )
        if length is None:
            raise FilegateError(
                ErrorCode.TUS_LENGTH_REQUIRED,
                "An upload token's uploads declare Upload-Length when they are created.",
            )
        profile = check_profile(principal, metadata.get("profile"))
        if grant.metadata:
            metadata_header = format_metadata({**metadata, **grant.fixed_metadata})
            metadata = parse_metadata(metadata_header)  # the merged header keeps to the limit
        metadata["profile"] = profile
    return uploads.NewUpload(
        tenant=principal.tenant,
        length=length,
        metadata_header=metadata_header,
        metadata=metadata,
        concat=concat,
        uploaded_by=principal.key_id,
    )


def _deferred(headers: Any) -> bool:
    return bool(headers.get("upload-defer-length") == "1")


def _creation_length(length: str | None, defer: str | None) -> int | None:
    if length is not None and defer is not None:
        raise _invalid("Send Upload-Length or Upload-Defer-Length, not both.")
    if defer is not None and defer != "1":
        raise _invalid("Upload-Defer-Length must be 1.")
    return parse_integer(length, "Upload-Length") if length is not None else None


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return parse_integer(length, "Content-Length") > 0
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def _require_patch_body_type(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != OFFSET_OCTET_STREAM:
        raise FilegateError(
            ErrorCode.TUS_CONTENT_TYPE, f"Upload bytes are sent as {OFFSET_OCTET_STREAM}."
        )


def _invalid(message: str) -> FilegateError:
    return FilegateError(ErrorCode.TUS_INVALID_HEADER, message)


async def _patch(upload_id: str, request: Request, principal: Principal) -> Response:
    _require_version(request)
    _require_patch_body_type(request)
    headers = request.headers
    offset_header = headers.get("upload-offset")
    if offset_header is None:
        raise _invalid("PATCH needs Upload-Offset.")
    offset = parse_integer(offset_header, "Upload-Offset")
    checksum_header = headers.get("upload-checksum")
    checksum = parse_checksum(checksum_header) if checksum_header is not None else None
    new_length_header = headers.get("upload-length")
    new_length = parse_integer(new_length_header, "Upload-Length") if new_length_header else None
    runtime = get_runtime(request)
    record = await _own_upload(runtime, principal, upload_id)
    _check_patch(record, offset, new_length)
    with _upload_slots(request).take():
        async with tus_state(request).locks.hold(record.id) as holder:
            # Re-read under the lock: the holder we took over from may have advanced it.
            record = await run_blocking(uploads.get_upload, runtime.db, principal.tenant, upload_id)
            _check_patch(record, offset, new_length)
            if new_length is not None and record.length is None:
                record = await _set_length(runtime, record, new_length)
            record = await _write_body(request, runtime, record, holder, checksum)
    out = _tus_headers(**{"Upload-Offset": str(record.offset)})
    if record.state is UploadState.RECEIVING:
        out["Upload-Expires"] = _expires(record)
    return Response(status_code=204, headers=out)


def _check_patch(record: UploadRecord, offset: int, new_length: int | None) -> None:
    if record.is_final:
        raise FilegateError(ErrorCode.TUS_FINAL_IMMUTABLE, "A final upload cannot be patched.")
    if record.state is UploadState.COMPLETE:
        raise FilegateError(
            ErrorCode.TUS_OFFSET_MISMATCH,
            "The upload is already complete.",
            offset=record.offset,
        )
    if offset != record.offset:
        raise FilegateError(
            ErrorCode.TUS_OFFSET_MISMATCH,
            f"The upload is at offset {record.offset}, not {offset}.",
            offset=record.offset,
        )
    if new_length is not None and record.length is not None and new_length != record.length:
        raise FilegateError(ErrorCode.TUS_LENGTH_MISMATCH, "Upload-Length cannot change.")
    if new_length is not None and new_length < record.offset:
        raise FilegateError(
            ErrorCode.TUS_LENGTH_MISMATCH, "Upload-Length is below the bytes already received."
        )


async def _set_length(runtime: Runtime, record: UploadRecord, length: int) -> UploadRecord:
    policy = runtime.settings.profile(record.profile)
    if length > policy.max_size:
        raise too_large(policy.max_size)
    updated = dataclasses.replace(record, length=length)
    if not await run_blocking(uploads.advance, runtime.db, updated, record.offset):
        raise FilegateError(ErrorCode.TUS_OFFSET_MISMATCH, "The upload changed meanwhile.")
    return updated


async def _write_body(
    request: Request,
    runtime: Runtime,
    record: UploadRecord,
    holder: Holder,
    checksum: Checksum | None,
) -> UploadRecord:
    """Stream the body into the upload; returns the record with its durable offset."""
    max_size = runtime.settings.profile(record.profile).max_size
    _check_declared_length(request, record.length, record.offset, max_size)
    receiver = PatchReceiver(runtime, tus_state(request).digests, record, checksum)
    await receiver.open()
    settings = runtime.settings
    chunks = body_chunks(
        request, settings.upload_read_timeout, settings.upload_min_bytes_per_second
    )
    try:
        await receive(receiver, chunks, holder)
    finally:
        await receiver.close()
    record = receiver.record
    if record.length is not None and record.offset == record.length:
        if receiver.completed:
            await _after_completion(request, runtime, record)
        else:  # the last bytes were made durable earlier (a SYNC_EVERY boundary)
            await _complete_upload(request, runtime, record, receiver.sha256())
        record = dataclasses.replace(record, state=UploadState.COMPLETE)
    return record


def _check_declared_length(
    request: Request, length: int | None, offset: int, max_size: int
) -> None:
    """Refuse a body that says up front it will not fit, before reading any of it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    size = parse_integer(declared, "Content-Length")
    limit = length if length is not None else max_size
    if offset + size > limit:
        raise too_large(min(limit, max_size))


async def _complete_upload(
    request: Request, runtime: Runtime, record: UploadRecord, sha256: str | None
) -> None:
    """Turn the fully received upload into a quarantined file, then do what follows."""
    await run_blocking(uploads.complete, runtime.db, runtime.storage, runtime.queue, record, sha256)
    await _after_completion(request, runtime, record)


async def _after_completion(request: Request, runtime: Runtime, record: UploadRecord) -> None:
    """What follows a completed upload: join the finals it completes, and count it."""
    await _assemble_ready(request, runtime, record)
    metrics.UPLOADS.labels(outcome="tus_completed").inc()
    signals.count(signals.UPLOADS, "tus_completed")
