"""The quarantine review: what an operator may do to a decided file, and the audit log of it.

Four actions, each with a required reason: release a rejected file to clean (only when its
profile lists every finding as ``overridable``, never past an antivirus finding), reject a clean
file, delete a file, inspect a file again. Each writes one append-only audit row in the same
transaction as the state change, and the webhook event the new state implies; bytes move the
way promotion moves them (``inspection.place_bytes``). Every action is guarded by the state the
reviewer saw, so two reviewers acting at once cannot both succeed.

The console is bound to the tenant of the reviewer's admin key, as the rest of the API is.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import ApiKeys, AuditLog, Files, Jobs
from filegate.db.repository.review import ReviewFiles, Served
from filegate.domain import (
    ANTIVIRUS_CODES,
    ApiKeyRecord,
    Area,
    AuditRecord,
    FileFilter,
    FileRecord,
    FileState,
    Finding,
    JobKind,
    JobRecord,
    ReviewAction,
    Scope,
    new_id,
    parse_id,
    utcnow,
)
from filegate.errors import ErrorCode, FilegateError
from filegate.jobs.base import JobQueue
from filegate.services import evictions
from filegate.services.inspection import place_bytes, state_events
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

# A reason is a sentence or a paragraph for the next reviewer, not a document.
MAX_REASON = 2000
PAGE_SIZE = 50
# A file's page shows its newest audit rows; the export has them all.
AUDIT_ON_PAGE = 100
EXPORT_BATCH = 500
# The finding a reviewer's rejection adds, so API clients see why a clean file turned rejected.
REJECTED_IN_REVIEW = Finding(
    "rejected_in_review", "a reviewer rejected the file; the reason is in the review audit log"
)


@dataclass(frozen=True, slots=True)
class Reviewer:
    """An operator signed in to the console with an admin key."""

    key_id: str
    tenant: str
    # The key's name and prefix, as the audit log records it.
    name: str

    @classmethod
    def of(cls, key: ApiKeyRecord) -> Reviewer:
        label = f"{key.name} ({key.prefix}…)" if key.name else f"{key.prefix}…"
        return cls(key_id=key.id, tenant=key.tenant, name=label)


def reviewer(db: Database, key_id: str) -> Reviewer:
    """The reviewer a console session names, checked now: a key revoked (or no longer admin)
    since sign-in ends its sessions at once."""
    with db.session() as session:
        key = ApiKeys(session).active_by_id(key_id)
    if key is None or Scope.ADMIN not in key.scopes:
        raise FilegateError(ErrorCode.UNAUTHENTICATED, "The session's key is no longer valid.")
    return Reviewer.of(key)


def list_files(
    db: Database, wanted: FileFilter, cursor: str | None, limit: int = PAGE_SIZE
) -> tuple[list[FileRecord], str | None]:
    """One page of the tenant's files, newest first, and the next page's cursor."""
    if cursor is not None:
        parse_id(cursor)
    with db.session() as session:
        page = ReviewFiles(session).page(wanted, before=cursor, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].id if more else None)


def get_file(db: Database, who: Reviewer, file_id: str) -> tuple[FileRecord, list[AuditRecord]]:
    """A file of the reviewer's tenant and its newest audit rows."""
    parse_id(file_id)
    with db.session() as session:
        record = Files(session).get(file_id, who.tenant)
        audit = AuditLog(session).for_file(file_id, who.tenant, AUDIT_ON_PAGE)
    if record is None:
        raise FilegateError(ErrorCode.FILE_NOT_FOUND, "No such file.")
    return record, audit


def release_refusal(settings: Settings, record: FileRecord) -> str | None:
    """Why ``record`` may not be released, or None when it may."""
    if record.state is not FileState.REJECTED:
        return f"only rejected files are released; this one is {record.state.value}"
    codes = {finding.code for finding in record.findings}
    if not codes:
        return "a rejection without findings cannot be overridden"
    antivirus = sorted(codes & ANTIVIRUS_CODES)
    if antivirus:
        return f"antivirus findings are never released: {', '.join(antivirus)}"
    profile = settings.profiles.get(record.profile)
    if profile is None:
        return f"the profile {record.profile!r} is no longer configured"
    allowed = {*profile.overridable, REJECTED_IN_REVIEW.code}
    blocked = sorted(codes - allowed)
    if blocked:
        return f"profiles.{record.profile}.overridable does not list {', '.join(blocked)}"
    return None


@dataclass(frozen=True, slots=True)
class Services:
    """What the actions act on."""

    db: Database
    storage: Storage
    queue: JobQueue
    settings: Settings


def act(
    services: Services, who: Reviewer, action: ReviewAction, file_id: str, reason: str
) -> AuditRecord:
    """Do ``action`` to the reviewer's file, for ``reason``; returns the audit row written."""
    reason = _reason(reason)
    parse_id(file_id)
    with services.db.session() as session:
        record = Files(session).get(file_id, who.tenant)
    if record is None:
        raise FilegateError(ErrorCode.FILE_NOT_FOUND, "No such file.")
    done = _ACTIONS[action](services, who, record, reason)
    log.info(
        "review.action",
        action=action.value,
        file_id=record.id,
        tenant=record.tenant,
        actor_key_id=who.key_id,
        before=done.before.value,
        after=done.after.value if done.after else None,
    )
    return done


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise FilegateError(ErrorCode.INVALID_REQUEST, "Every action needs a reason.")
    if len(reason) > MAX_REASON:
        raise FilegateError(
            ErrorCode.INVALID_REQUEST, f"A reason is at most {MAX_REASON} characters."
        )
    return reason


def _audit(
    who: Reviewer,
    action: ReviewAction,
    record: FileRecord,
    reason: str,
    after: FileState | None,
    **extra: object,
) -> AuditRecord:
    return AuditRecord(
        id=new_id(),
        at=utcnow(),
        actor_key_id=who.key_id,
        actor=who.name,
        action=action,
        file_id=record.id,
        tenant=record.tenant,
        reason=reason,
        before=record.state,
        after=after,
        extra={"findings": [f.code for f in record.findings], **extra},
    )


def _refused(message: str) -> FilegateError:
    return FilegateError(ErrorCode.REVIEW_REFUSED, message)


def _changed() -> FilegateError:
    return _refused("The file changed meanwhile (another reviewer, or its inspection); reload.")


def _release(services: Services, who: Reviewer, record: FileRecord, reason: str) -> AuditRecord:
    refusal = release_refusal(services.settings, record)
    if refusal is not None:
        raise _refused(f"This file cannot be released: {refusal}.")
    place_bytes(services.storage, record.id, FileState.CLEAN)
    served = _served(services.storage, record)
    released = dataclasses.replace(
        record,
        state=FileState.CLEAN,
        size=served.size,
        sha256=served.sha256,
        sanitized=served.sanitized,
    )
    row = _audit(who, ReviewAction.RELEASE, record, reason, FileState.CLEAN, sha256=served.sha256)
    with services.db.session() as session:
        moved = ReviewFiles(session).decide(
            record.id, who.tenant, before=FileState.REJECTED, after=FileState.CLEAN, served=served
        )
        jobs = _record(session, row, released) if moved else []
    if not moved:
        _put_back(services, record.id)
        raise _changed()
    services.queue.dispatch(jobs)
    return row


def _served(storage: Storage, record: FileRecord) -> Served:
    """What the clean area now holds for ``record``: the upload, or a sanitised copy that was
    parked with it (a clean file rejected by a reviewer), hashed again to be sure which."""
    digest, size = hashlib.sha256(), 0
    for chunk in storage.read(Area.CLEAN, record.id):
        digest.update(chunk)
        size += len(chunk)
    sha256 = digest.hexdigest()
    sanitized = () if sha256 == record.received_sha256 else record.sanitized
    return Served(size=size, sha256=sha256, sanitized=sanitized)


def _put_back(services: Services, file_id: str) -> None:
    """After a lost race: the bytes go where the file's state (as it is now) keeps them."""
    with services.db.session() as session:
        now = Files(session).get(file_id)
    if now is None:
        _delete_bytes(services.storage, file_id)
    elif now.state is not FileState.QUARANTINED:
        place_bytes(services.storage, file_id, now.state)


def _record(session: Session, row: AuditRecord, changed: FileRecord) -> list[JobRecord]:
    AuditLog(session).add(row)
    return state_events(session, changed, changed.state)


def _reject(services: Services, who: Reviewer, record: FileRecord, reason: str) -> AuditRecord:
    if record.state is not FileState.CLEAN:
        raise _refused(f"Only clean files are rejected; this one is {record.state.value}.")
    findings = record.findings
    if REJECTED_IN_REVIEW not in findings:
        findings = (*findings, REJECTED_IN_REVIEW)
    rejected = dataclasses.replace(record, state=FileState.REJECTED, findings=findings)
    row = _audit(who, ReviewAction.REJECT, record, reason, FileState.REJECTED)
    with services.db.session() as session:
        moved = ReviewFiles(session).decide(
            record.id,
            who.tenant,
            before=FileState.CLEAN,
            after=FileState.REJECTED,
            findings=findings,
        )
        jobs = _record(session, row, rejected) if moved else []
    if not moved:
        raise _changed()
    services.queue.dispatch(jobs)
    # Not served from now on: the bytes go aside, and shared caches forget them.
    place_bytes(services.storage, record.id, FileState.REJECTED)
    _evict(services, record.id)
    return row


def _delete(services: Services, who: Reviewer, record: FileRecord, reason: str) -> AuditRecord:
    row = _audit(who, ReviewAction.DELETE, record, reason, None, name=record.display_name)
    with services.db.session() as session:
        deleted = Files(session).delete(record.id, who.tenant)
        if deleted:
            AuditLog(session).add(row)
    if not deleted:
        raise _changed()
    # The row went first: once it is gone nothing serves the bytes, whatever storage does.
    _delete_bytes(services.storage, record.id)
    _evict(services, record.id)
    return row


def _reinspect(services: Services, who: Reviewer, record: FileRecord, reason: str) -> AuditRecord:
    if record.state is FileState.QUARANTINED:
        raise _refused("The file is being inspected already.")
    row = _audit(who, ReviewAction.REINSPECT, record, reason, FileState.QUARANTINED)
    with services.db.session() as session:
        moved = ReviewFiles(session).requeue(record.id, who.tenant, before=record.state)
        if moved:
            AuditLog(session).add(row)
        job = Jobs(session).want(JobKind.INSPECT, record.id) if moved else None
    if not moved:
        raise _changed()
    services.queue.dispatch([job] if job else [])
    if record.state is FileState.CLEAN:
        _evict(services, record.id)
    return row


def _delete_bytes(storage: Storage, file_id: str) -> None:
    for area in Area:
        storage.delete(area, file_id)


def _evict(services: Services, file_id: str) -> None:
    evictions.request(services.db, services.queue, services.settings, [f"file-{file_id}"])


_ACTIONS = {
    ReviewAction.RELEASE: _release,
    ReviewAction.REJECT: _reject,
    ReviewAction.DELETE: _delete,
    ReviewAction.REINSPECT: _reinspect,
}


def recent(db: Database, tenant: str, limit: int = AUDIT_ON_PAGE) -> list[AuditRecord]:
    with db.session() as session:
        return AuditLog(session).recent(tenant, limit)


def export(db: Database, tenant: str) -> Iterator[AuditRecord]:
    """Every audit row of ``tenant``, oldest first, read a batch at a time."""
    after: str | None = None
    while True:
        with db.session() as session:
            batch = AuditLog(session).page(tenant, after=after, limit=EXPORT_BATCH)
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id
