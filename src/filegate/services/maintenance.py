"""The scheduled jobs: expire unfinished uploads, reconcile storage with the DB, re-queue what
waits, purge old rejections and lapsed upload tokens and share links. Each is idempotent: a
second run right after the first finds nothing left to do, and a run cut short by a crash is
finished by the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from filegate.db.engine import Database
from filegate.db.repository import (
    Files,
    Jobs,
    Processes,
    ShareLinks,
    Signals,
    Uploads,
    UploadTokens,
)
from filegate.domain import (
    SCHEDULED_JOBS,
    Area,
    EventType,
    FileState,
    Finding,
    JobKind,
    JobRecord,
    UploadRecord,
    UploadState,
    utcnow,
)
from filegate.inspect.names import sanitize_filename
from filegate.jobs.base import JobQueue
from filegate.services import webhooks
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

BATCH = 500
# One run does at most this much; the next run carries on (keeps a run's duration bounded).
MAX_PER_RUN = 20_000
SCHEDULE_LEDGER_DAYS = 7
# Upload tokens and share links are deleted this long after their expires_at, revoked ones
# too (a token lives a day at most; a revoked link's row refuses nothing a missing row would
# not). No answer needs a lapsed row: unknown, expired and revoked answer alike (401
# unauthenticated, 403 link_invalid). The week keeps a late revocation of a lapsed one a 204,
# not a 404, and the id in `uploaded_by` and in the logs traceable to its row for a while.
LAPSED_GRACE = timedelta(days=7)


def expire_uploads(db: Database, storage: Storage, queue: JobQueue) -> str:
    """Unfinished tus uploads past ``Upload-Expires``: event, bytes, then the row. Complete
    partial uploads past it that no waiting final lists go too (no event: they finished)."""
    now = utcnow()
    expired = 0
    with db.session() as session:
        candidates = Uploads(session).expired(now, MAX_PER_RUN)
    for upload in candidates:
        with db.session() as session:
            marked = Uploads(session).expire(upload.id, now)
            jobs = _expired_event(session, upload, now) if marked else []
        queue.dispatch(jobs)
        if marked:
            expired += 1
            log.info("upload.expired", upload_id=upload.id, tenant=upload.tenant)
    with db.session() as session:
        stale = Uploads(session).stale_partials(now, MAX_PER_RUN)
    for upload_id in stale:
        with db.session() as session:
            Uploads(session).expire(upload_id, now, current=UploadState.COMPLETE)
    # Rows marked expired (now, or by a run that crashed half-way) lose their bytes, then go.
    removed = 0
    with db.session() as session:
        leftovers = Uploads(session).in_states((UploadState.EXPIRED,), MAX_PER_RUN)
    for upload_id in leftovers:
        storage.delete(Area.UPLOADS, upload_id)
        with db.session() as session:
            removed += Uploads(session).delete(upload_id, (UploadState.EXPIRED,))
    return f"expired={expired} removed={removed}"


def _expired_event(session: Session, upload: UploadRecord, now: datetime) -> list[JobRecord]:
    data = {
        "upload_id": upload.id,
        "tenant": upload.tenant,
        "name": sanitize_filename(upload.filename).display if upload.filename else None,
        "offset": upload.offset,
        "length": upload.length,
        "expired_at": now.isoformat(),
    }
    return webhooks.emit(
        session,
        tenant=upload.tenant,
        type_=EventType.UPLOAD_EXPIRED,
        subject=upload.id,
        data=data,
    )


@dataclass
class Reconciliation:
    orphan_objects: int = 0
    orphan_uploads: int = 0
    lost_files: int = 0
    misplaced: int = 0
    stale_temp: int = 0

    def __str__(self) -> str:
        return (
            f"orphan_objects={self.orphan_objects} orphan_uploads={self.orphan_uploads} "
            f"lost_files={self.lost_files} misplaced={self.misplaced} "
            f"stale_temp={self.stale_temp}"
        )


def reconcile(
    db: Database,
    storage: Storage,
    grace_seconds: float,
    evict: Callable[[list[str]], None] | None = None,
) -> str:
    """Storage against the DB, both ways; every difference is logged and fixed.

    - an object with no row (a crash between the object's commit and its row's) is deleted once
      older than ``grace_seconds``;
    - a clean row whose object is gone is rejected with ``stored_object_missing`` (never a 503);
    - a rejected file's bytes found in clean go back to quarantine; a clean file's upload left in
      quarantine beside its promoted copy is deleted;
    - temp files of writers that died mid-upload (a killed process) are removed.

    ``evict`` purges shared caches of the files that stopped being clean.
    """
    found = Reconciliation()
    cutoff = time.time() - grace_seconds
    found.stale_temp = storage.cleanup_stale_temp(grace_seconds)
    for area in (Area.QUARANTINE, Area.CLEAN):
        for batch in _batches(storage.keys(area)):
            with db.session() as session:
                states = Files(session).states(batch)
            for key in batch:
                _check_object(storage, area, key, states.get(key), cutoff=cutoff, found=found)
    for batch in _batches(storage.keys(Area.UPLOADS)):
        with db.session() as session:
            needed = Uploads(session).needing_bytes(batch)
        for key in batch:
            if key in needed:
                continue  # still arriving, or a complete partial a final may still join
            if _old(storage, Area.UPLOADS, key, cutoff):
                log.warning("reconcile.orphan_upload_bytes", key=key)
                storage.delete(Area.UPLOADS, key)
                found.orphan_uploads += 1
    lost = _check_clean_rows(db, storage, found)
    if lost and evict is not None:
        evict([f"file-{file_id}" for file_id in lost])
    if any(vars(found).values()):
        log.warning("reconcile.fixed", **vars(found))
    return str(found)


def _check_object(
    storage: Storage,
    area: Area,
    key: str,
    state: FileState | None,
    *,
    cutoff: float,
    found: Reconciliation,
) -> None:
    if state is None:
        if _old(storage, area, key, cutoff):
            log.warning("reconcile.orphan_object", area=area.value, key=key)
            storage.delete(area, key)
            found.orphan_objects += 1
        return
    if area is Area.CLEAN and state is FileState.REJECTED:
        log.warning("reconcile.rejected_bytes_in_clean", file_id=key)
        if storage.exists(Area.QUARANTINE, key):
            storage.delete(Area.CLEAN, key)
        else:
            storage.move(Area.CLEAN, Area.QUARANTINE, key)
        found.misplaced += 1
    elif area is Area.QUARANTINE and state is FileState.CLEAN and storage.exists(Area.CLEAN, key):
        log.warning("reconcile.leftover_upload", file_id=key)
        storage.delete(Area.QUARANTINE, key)
        found.misplaced += 1


def _check_clean_rows(db: Database, storage: Storage, found: Reconciliation) -> list[str]:
    """Clean rows whose object is gone, rejected; their ids."""
    lost_ids: list[str] = []
    after = ""
    seen = 0
    while seen < MAX_PER_RUN:
        with db.session() as session:
            ids = Files(session).ids_in_state(FileState.CLEAN, after, BATCH)
        if not ids:
            return lost_ids
        seen += len(ids)
        after = ids[-1]
        for file_id in ids:
            if storage.exists(Area.CLEAN, file_id):
                continue
            finding = Finding("stored_object_missing", "the clean bytes are gone from storage")
            with db.session() as session:
                lost = Files(session).mark_lost(file_id, finding)
            if lost:
                log.error("reconcile.lost_file", file_id=file_id)
                found.lost_files += 1
                lost_ids.append(file_id)
    return lost_ids


def _old(storage: Storage, area: Area, key: str, cutoff: float) -> bool:
    try:
        return storage.modified(area, key) < cutoff
    except Exception:
        return False  # gone since it was listed


def _batches(keys: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for count, key in enumerate(keys):
        if count >= MAX_PER_RUN:
            break
        batch.append(key)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def rescan(db: Database, queue: JobQueue, recover: Callable[[], int]) -> str:
    """Queue again every quarantined file that has no live job: its scanner was down, its
    trigger was lost, or it predates the queue. Then re-send jobs held by dead workers."""
    requeued = 0
    with db.session() as session:
        waiting = Files(session).waiting(MAX_PER_RUN)
    for start in range(0, len(waiting), BATCH):
        batch = waiting[start : start + BATCH]
        jobs: list[JobRecord] = []
        with db.session() as session:
            ledger = Jobs(session)
            for kind, has_verdict in ((JobKind.INSPECT, False), (JobKind.PROMOTE, True)):
                ids = [file_id for file_id, verdict in batch if verdict is has_verdict]
                live = ledger.active(kind, ids)
                for file_id in ids:
                    if file_id not in live and (job := ledger.want(kind, file_id)):
                        jobs.append(job)
        queue.dispatch(jobs)
        requeued += len(jobs)
    recovered = recover()
    return f"requeued={requeued} recovered={recovered}"


def purge(
    db: Database,
    storage: Storage,
    rejected_retention_seconds: float,
    status_retention_days: int,
    *,
    tus_expiry_seconds: float,
) -> str:
    """The daily clean-up: rejected files past their retention (bytes first, then the row,
    guarded by its state), finished schedule slots, status-page history past its own, and
    upload tokens and share links past their expiry by ``LAPSED_GRACE``."""
    now = utcnow()
    cutoff = now - timedelta(seconds=rejected_retention_seconds)
    purged = 0
    with db.session() as session:
        ids = Files(session).rejected_before(cutoff, MAX_PER_RUN)
    for file_id in ids:
        storage.delete(Area.QUARANTINE, file_id)
        storage.delete(Area.CLEAN, file_id)
        with db.session() as session:
            purged += Files(session).purge(file_id)
    history = now - timedelta(days=status_retention_days)
    with db.session() as session:
        forgotten = Jobs(session).forget_finished(
            now - timedelta(days=SCHEDULE_LEDGER_DAYS), SCHEDULED_JOBS
        )
        signal_rows = Signals(session).forget_before(history)
        process_rows = Processes(session).forget_before(history)
    tokens, links = _forget_lapsed(db, now, tus_expiry_seconds)
    if purged:
        log.info("purge.rejected", count=purged)
    if tokens or links:
        log.info("purge.lapsed", tokens=tokens, share_links=links)
    return (
        f"purged={purged} ledger_rows={forgotten} signal_rows={signal_rows} "
        f"process_rows={process_rows} tokens={tokens} share_links={links}"
    )


def _forget_lapsed(db: Database, now: datetime, tus_expiry_seconds: float) -> tuple[int, int]:
    """Upload tokens and share links that expired over ``LAPSED_GRACE`` ago; how many of each."""
    # A PATCH renews an upload, and a token PATCHes only while live: an upload it created
    # expires within tus_expiry_seconds of the token (an API key carrying it on needs no
    # token row), so a row kept that long outlives whatever the token could still send.
    token_cutoff = now - max(LAPSED_GRACE, timedelta(seconds=tus_expiry_seconds))
    link_cutoff = now - LAPSED_GRACE
    tokens = _in_batches(db, lambda s: UploadTokens(s).forget_expired(token_cutoff, BATCH))
    links = _in_batches(db, lambda s: ShareLinks(s).forget_expired(link_cutoff, BATCH))
    return tokens, links


def _in_batches(db: Database, forget: Callable[[Session], int]) -> int:
    """Run ``forget`` (at most ``BATCH`` rows) a transaction at a time, up to ``MAX_PER_RUN``."""
    forgotten = 0
    while forgotten < MAX_PER_RUN:
        with db.session() as session:
            batch = forget(session)
        forgotten += batch
        if batch < BATCH:
            break
    return forgotten
