"""Resumable uploads (tus): create, look up, complete, concatenate and terminate.

Bytes grow in the ``uploads`` storage area; the DB offset is advanced only after the bytes up
to it are fsynced, so the offset a client is told never exceeds what is durable. A complete
upload moves to quarantine and becomes a file with the same id, on the direct-upload path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Files, Uploads
from filegate.domain import (
    Area,
    FileRecord,
    Principal,
    UploadRecord,
    UploadState,
    new_id,
    parse_id,
    utcnow,
)
from filegate.errors import ErrorCode, FilegateError
from filegate.jobs.base import JobQueue
from filegate.services.uploads import (
    UploadMeta,
    new_file_record,
    normalise_declared_type,
    register_upload,
    storable_name,
    too_large,
)
from filegate.storage.base import Storage
from filegate.tus.headers import Concat

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewUpload:
    tenant: str
    length: int | None
    metadata_header: str
    metadata: dict[str, str | None]
    concat: Concat | None
    # The upload token's or API key's id.
    uploaded_by: str | None = None


def expiry(settings: Settings) -> datetime:
    return utcnow() + timedelta(seconds=settings.tus_expiry_seconds)


def create_upload(db: Database, settings: Settings, new: NewUpload) -> UploadRecord:
    """Validate everything about a new upload before any byte is accepted, then record it."""
    policy = settings.profile(new.metadata.get("profile"))
    length = new.length
    parts: tuple[str, ...] = ()
    if new.concat is not None and new.concat.final:
        parts = new.concat.parts
        length = _final_length(db, new.tenant, parts)
    if length is not None and length > policy.max_size:
        raise too_large(policy.max_size)
    now = utcnow()
    record = UploadRecord(
        id=new_id(),
        tenant=new.tenant,
        profile=policy.name,
        length=length,
        offset=0,
        metadata_header=new.metadata_header,
        filename=storable_name(new.metadata.get("filename")),
        filetype=normalise_declared_type(new.metadata.get("filetype")),
        concat=None if new.concat is None else ("final" if new.concat.final else "partial"),
        parts=parts,
        state=UploadState.RECEIVING,
        expires_at=expiry(settings),
        created_at=now,
        updated_at=now,
        uploaded_by=new.uploaded_by,
    )
    with db.session() as session:
        Uploads(session).add(record)
    log.debug("tus.created", upload_id=record.id, tenant=record.tenant, length=length)
    return record


def _final_length(db: Database, tenant: str, parts: tuple[str, ...]) -> int | None:
    """The final upload's length, or None while some part's length is still deferred."""
    if len(set(parts)) != len(parts):
        raise FilegateError(ErrorCode.TUS_CONCAT_INVALID, "A partial upload is listed twice.")
    with db.session() as session:
        found = Uploads(session).many(parts, tenant)
    for part_id in parts:
        part = found.get(part_id)
        if part is None or not part.is_partial or not _joinable(part):
            raise FilegateError(
                ErrorCode.TUS_CONCAT_INVALID,
                f"{part_id} is not a partial upload of yours that can be joined.",
            )
    lengths = [found[p].length for p in parts]
    return None if any(n is None for n in lengths) else sum(n for n in lengths if n is not None)


def _joinable(part: UploadRecord) -> bool:
    if part.state in (UploadState.TERMINATED, UploadState.EXPIRED):
        return False
    return part.state is UploadState.COMPLETE or part.expires_at > utcnow()


def get_upload(
    db: Database, tenant: str, upload_id: str, *, caller: Principal | None = None
) -> UploadRecord:
    """The caller's upload; unknown (or another tenant's, or for an upload token ``caller``
    one it did not create) is 404, terminated or expired is 410."""
    try:
        parse_id(upload_id)
    except FilegateError:
        raise _not_found() from None
    with db.session() as session:
        record = Uploads(session).get(upload_id, tenant)
    if record is None or (caller is not None and not caller.owns(record.uploaded_by)):
        raise _not_found()
    if record.state is UploadState.TERMINATED:
        raise FilegateError(ErrorCode.TUS_UPLOAD_GONE, "The upload was terminated.")
    if record.state is UploadState.FAILED:
        raise FilegateError(
            ErrorCode.TUS_UPLOAD_GONE,
            "The final upload could not be assembled from its parts (together they are over "
            "the profile's maximum size); create a new one.",
        )
    expired = record.state is UploadState.RECEIVING and record.expires_at <= utcnow()
    if expired or record.state is UploadState.EXPIRED:
        raise FilegateError(ErrorCode.TUS_UPLOAD_GONE, "The upload expired before it finished.")
    return record


def _not_found() -> FilegateError:
    return FilegateError(ErrorCode.TUS_UPLOAD_NOT_FOUND, "No such upload.")


def advance(db: Database, upload: UploadRecord, offset: int) -> bool:
    """Record that the bytes up to ``offset`` are durable (call only after fsync).

    ``upload`` carries the offset it started from (the guard), its length and new expiry.
    """
    with db.session() as session:
        return Uploads(session).advance(
            upload.id,
            expected=upload.offset,
            offset=offset,
            length=upload.length,
            expires_at=upload.expires_at,
        )


def reload(db: Database, upload_id: str) -> UploadRecord:
    with db.session() as session:
        record = Uploads(session).get(upload_id)
    if record is None:
        raise _not_found()
    return record


def complete(
    db: Database,
    storage: Storage,
    queue: JobQueue,
    upload: UploadRecord,
    sha256: str | None,
    *,
    in_quarantine: bool = False,
) -> FileRecord | None:
    """Turn a fully received upload into a quarantined file (partial uploads just finish).

    ``sha256`` None: the bytes were received where they could not be read back as they came
    (S3), so it is read from the sealed object. ``in_quarantine``: the last PATCH stored the
    whole object there already (``ObjectAppender.store_whole``)."""
    if upload.length is None or upload.offset != upload.length:
        raise FilegateError(ErrorCode.UPLOAD_INCOMPLETE, "The upload has not received every byte.")
    if upload.is_partial:  # its bytes stay in the uploads area for the final to join
        storage.seal(Area.UPLOADS, upload.id, upload.length)
        with db.session() as session:
            Uploads(session).set_state(upload.id, UploadState.COMPLETE)
        return None
    if in_quarantine or storage.exists(Area.QUARANTINE, upload.id):
        # Stored there whole, or a crash came after the move: drop what the uploads area holds.
        storage.delete(Area.UPLOADS, upload.id)
    else:
        storage.seal(Area.UPLOADS, upload.id, upload.length)
        storage.move(Area.UPLOADS, Area.QUARANTINE, upload.id)
    if sha256 is None:
        sha256 = rehash(storage, upload.id, upload.length, sealed=True).hexdigest()
    return _register(db, storage, queue, upload, size=upload.length, sha256=sha256)


def _register(
    db: Database,
    storage: Storage,
    queue: JobQueue,
    upload: UploadRecord,
    *,
    size: int,
    sha256: str,
) -> FileRecord:
    meta = UploadMeta(
        tenant=upload.tenant,
        original_name=upload.filename,
        declared_type=upload.filetype,
        profile=upload.profile,
        uploaded_by=upload.uploaded_by,
    )
    record = new_file_record(upload.id, size, sha256, meta)

    def mark_complete(session: Session) -> None:
        Uploads(session).set_state(upload.id, UploadState.COMPLETE, length=size)

    register_upload(db, storage, queue, record, also=mark_complete, channel="tus")
    log.debug("tus.completed", upload_id=upload.id, tenant=upload.tenant, size=size)
    return record


def ready_finals(db: Database, tenant: str) -> list[UploadRecord]:
    """Waiting final uploads whose partial uploads are now all complete.

    The caller assembles each under that final's lock, after re-reading it: two partials that
    finish together must not both assemble it.
    """
    with db.session() as session:
        finals = Uploads(session).waiting_finals(tenant)
        ready = []
        for final in finals:
            parts = Uploads(session).many(final.parts, tenant)
            states = [parts[p].state if p in parts else None for p in final.parts]
            if all(state is UploadState.COMPLETE for state in states):
                ready.append(final)
    return ready


def assemble(
    db: Database, storage: Storage, queue: JobQueue, settings: Settings, final: UploadRecord
) -> FileRecord:
    """Join the partial uploads, in order, into one quarantined object: server-side where the
    storage can (S3 part copies), else streamed in constant memory; then hash what was made."""
    policy = settings.profile(final.profile)
    size = sum(storage.size(Area.UPLOADS, part_id) for part_id in final.parts)
    if size > policy.max_size:
        raise too_large(policy.max_size)
    storage.concatenate(Area.UPLOADS, final.parts, Area.QUARANTINE, final.id)
    digest = hashlib.sha256()
    for chunk in storage.read(Area.QUARANTINE, final.id):
        digest.update(chunk)
    return _register(db, storage, queue, final, size=size, sha256=digest.hexdigest())


def fail_final(db: Database, final: UploadRecord, reason: FilegateError) -> None:
    """A final that can never be assembled is set aside, so it is no longer tried each time
    another partial upload of the tenant finishes; requests for it then answer 410."""
    with db.session() as session:
        failed = Uploads(session).set_state(final.id, UploadState.FAILED)
    if failed:
        log.warning(
            "tus.final_failed", upload_id=final.id, tenant=final.tenant, code=reason.code.value
        )


def terminate(db: Database, storage: Storage, tenant: str, upload_id: str) -> None:
    """Stop an upload and delete its bytes; later requests for it answer 410."""
    upload = get_upload(db, tenant, upload_id)
    with db.session() as session:
        Uploads(session).set_state(upload.id, UploadState.TERMINATED, current=upload.state)
        if upload.state is UploadState.COMPLETE and not upload.is_partial:
            # A finished upload is the file: terminating it deletes the file too.
            Files(session).delete(upload.id, tenant)
    for area in Area:
        storage.delete(area, upload.id)
    log.info("tus.terminated", upload_id=upload.id, tenant=tenant)


def rehash(storage: Storage, upload_id: str, length: int, *, sealed: bool = False) -> Any:
    """sha256 of the first ``length`` stored bytes, for a PATCH that continues elsewhere;
    None where unfinished uploads cannot be read back (S3): the sha256 is then taken from the
    object once it is sealed.

    A crash between the move to quarantine and the DB commit leaves the bytes there.
    """
    if length and not sealed and not storage.reads_unfinished_uploads:
        return None
    digest = hashlib.sha256()
    area = Area.UPLOADS
    if length and not storage.exists(area, upload_id):
        area = Area.QUARANTINE
    if length:
        for chunk in storage.read(area, upload_id, 0, length):
            digest.update(chunk)
    return digest


def finish_received(
    db: Database, storage: Storage, queue: JobQueue, upload: UploadRecord
) -> FileRecord | None:
    """Complete an upload that has every byte but is not complete (a crash came between)."""
    assert upload.length is not None
    digest = rehash(storage, upload.id, upload.length)
    return complete(db, storage, queue, upload, None if digest is None else digest.hexdigest())
