"""Receiving uploads: stream bytes into quarantine, then record the file and ask for inspection.

Direct uploads and (later) tus uploads differ only in how bytes arrive; both end in
``register_upload``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog
from sqlalchemy.orm import Session

from filegate import metrics
from filegate.db.engine import Database
from filegate.db.repository import Files, Jobs
from filegate.domain import Area, FileRecord, FileState, JobKind, new_id, utcnow
from filegate.errors import ErrorCode, FilegateError
from filegate.inspect.names import sanitize_filename
from filegate.jobs.base import JobQueue
from filegate.storage.base import Storage

# How the bytes of a file arrived.
Channel = Literal["direct", "tus", "import"]

log = structlog.get_logger(__name__)

# Longer names are an attack or a bug; what is kept is still judged by the name inspector.
MAX_ORIGINAL_NAME = 1024


class IncomingFile:
    """Bytes on their way into quarantine: hashed, counted and capped as they pass."""

    def __init__(self, storage: Storage, max_size: int) -> None:
        self.id = new_id()
        self.max_size = max_size
        self.size = 0
        self._digest = hashlib.sha256()
        self._writer = storage.writer(Area.QUARANTINE, self.id)

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise too_large(self.max_size)
        self._digest.update(chunk)
        self._writer.write(chunk)

    def commit(self) -> str:
        """Make the bytes durable in quarantine; returns the sha256 hex digest."""
        self._writer.commit()
        return self._digest.hexdigest()

    def abort(self) -> None:
        self._writer.abort()


def too_large(max_size: int) -> FilegateError:
    return FilegateError(
        ErrorCode.FILE_TOO_LARGE,
        f"The file is larger than this profile allows ({max_size} bytes).",
        max_size=max_size,
    )


@dataclass(frozen=True, slots=True)
class UploadMeta:
    tenant: str
    original_name: str | None
    declared_type: str | None
    profile: str
    # The upload token's or API key's id (None: an import).
    uploaded_by: str | None = None


def new_file_record(file_id: str, size: int, sha256: str, meta: UploadMeta) -> FileRecord:
    now = utcnow()
    return FileRecord(
        id=file_id,
        tenant=meta.tenant,
        original_name=storable_name(meta.original_name),
        display_name=sanitize_filename(meta.original_name).display,
        size=size,
        sha256=sha256,
        declared_type=normalise_declared_type(meta.declared_type),
        detected_type=None,
        profile=meta.profile,
        state=FileState.QUARANTINED,
        findings=(),
        created_at=now,
        updated_at=now,
        inspected_at=None,
        uploaded_by=meta.uploaded_by,
    )


def register_upload(
    db: Database,
    storage: Storage,
    queue: JobQueue,
    record: FileRecord,
    also: Callable[[Session], None] | None = None,
    *,
    channel: Channel,
) -> FileRecord:
    """Record a committed quarantine object and its inspect job; send the job after the commit.

    ``also`` runs in the same transaction (a tus upload marks itself complete there);
    ``channel`` says how the bytes came, for the metrics.
    """
    try:
        with db.session() as session:
            Files(session).add(record)
            if also is not None:
                also(session)
            job = Jobs(session).want(JobKind.INSPECT, record.id)
    except Exception:
        storage.delete(Area.QUARANTINE, record.id)
        raise
    queue.dispatch([job] if job else [])
    metrics.UPLOAD_BYTES.labels(channel=channel).inc(record.size)
    log.debug(
        "upload.received",
        file_id=record.id,
        tenant=record.tenant,
        size=record.size,
        profile=record.profile,
    )
    return record


def storable_name(raw: str | None) -> str | None:
    """The client's name as given, made storable: inspection judges it, nothing else uses it.

    PostgreSQL text cannot hold NUL and UTF-8 cannot hold lone surrogates; the escapes keep
    the evidence (``%00`` is itself a finding) without breaking the insert.
    """
    if raw is None:
        return None
    text = raw.replace("\x00", "%00").encode("utf-8", "backslashreplace").decode("utf-8")
    return text[:MAX_ORIGINAL_NAME]


def normalise_declared_type(value: str | None) -> str | None:
    """The client's media type without parameters: only ever compared, never served."""
    if not value:
        return None
    media_type = value.split(";", 1)[0].strip().lower()
    return media_type[:255] or None
