"""The inspect and promote jobs: judge a quarantined file, then act on the verdict.

``inspect`` runs the sandboxed pipeline and ClamAV and stores the verdict (the file stays
quarantined); ``promote`` moves the bytes and flips the state in one guarded UPDATE, recording
the webhook events in the same transaction. Each is safe to run twice or after a crash at any
line: the verdict is stored only while none is (``WHERE verdict IS NULL``), the state flips only
from quarantined, storage moves are idempotent, and a sanitised copy is written to clean before
the verdict that names it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from filegate import metrics, signals
from filegate.db.engine import Database
from filegate.db.repository import Files, Jobs
from filegate.domain import (
    Action,
    Area,
    EventType,
    FileRecord,
    FileState,
    Finding,
    InspectionPolicy,
    JobKind,
    JobRecord,
    Verdict,
    utcnow,
)
from filegate.errors import FilegateError
from filegate.faults import failpoint, maybe_delay
from filegate.inspect import antivirus
from filegate.inspect.base import Inspection, SandboxRequest
from filegate.jobs.base import JobQueue
from filegate.services import webhooks
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

# Findings the inspect job adds outside the pipeline (the pipeline's are inspect.FINDING_CODES).
WORKER_CODES: dict[str, str] = {
    "stored_object_missing": "The uploaded bytes are no longer in quarantine storage; the file "
    "is rejected rather than left pending.",
    "profile_unknown": "The file's profile was removed from the configuration before its "
    "inspection ran.",
}

PolicyLookup = Callable[[str], InspectionPolicy]
RunJob = Callable[[SandboxRequest], Inspection]


@dataclass(frozen=True, slots=True)
class Inspector:
    """How files are judged: the sandboxed pipeline, then (optionally) ClamAV."""

    run: RunJob
    policy_for: PolicyLookup
    scanner: antivirus.ScannerConfig | None = None
    scanner_required: bool = False
    # Starts the sandbox ahead of the first upload (its imports take about a second).
    warm_up: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class _Judgement:
    verdict: Verdict
    sanitized: Path | None = None
    changes: tuple[str, ...] = ()


def inspect_job(
    db: Database, storage: Storage, queue: JobQueue, inspector: Inspector, file_id: str
) -> str:
    """Inspect one file and store its verdict; then ask for the promote job."""
    with db.session() as session:
        record, stored_verdict = Files(session).with_verdict(file_id)
    if record is None:
        return "file_missing"
    if record.state is not FileState.QUARANTINED:
        return "already_decided"
    if stored_verdict is not None:
        _want_promote(db, queue, file_id)
        return "already_inspected"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="filegate-inspect-") as scratch:
        judgement = _judge(storage, inspector, record, Path(scratch) / "sanitized")
        if _needs_retry(judgement.verdict, inspector):
            _note_retry(db, record, judgement.verdict)
            return "waiting_for_scanner"
        size, sha256 = (None, None)
        if judgement.sanitized is not None:
            size, sha256 = _store_sanitized(storage, record.id, judgement.sanitized)
    maybe_delay("inspect.delay")
    failpoint("inspect.before_verdict")
    verdict = judgement.verdict
    with db.session() as session:
        stored = Files(session).record_verdict(
            record.id,
            state=verdict.state,
            findings=verdict.findings,
            detected_type=verdict.detected_type,
            size=size,
            sha256=sha256,
            sanitized=judgement.changes,
        )
        jobs = [j for j in [Jobs(session).want(JobKind.PROMOTE, record.id)] if j] if stored else []
    queue.dispatch(jobs)
    if not stored:
        return "already_inspected"
    _report(record, verdict, time.monotonic() - started, sanitized=size is not None)
    return verdict.state.value


def promote_job(db: Database, storage: Storage, queue: JobQueue, file_id: str) -> str:
    """Act on a stored verdict: clean bytes into the clean area, rejected ones kept aside."""
    with db.session() as session:
        record, verdict = Files(session).with_verdict(file_id)
    if record is None:
        return "file_missing"
    if record.state is not FileState.QUARANTINED:
        _tidy(storage, record)
        return "already_promoted"
    if verdict is None:
        return "not_inspected"
    # The verdict says whether a sanitised copy is in clean: no need to look (on S3, a HEAD).
    place_bytes(storage, file_id, verdict, copy_in_clean=bool(record.sanitized))
    failpoint("promote.before_state")
    with db.session() as session:
        promoted = Files(session).promote(file_id)
        jobs = state_events(session, record, verdict) if promoted else []
    failpoint("promote.before_dispatch")
    queue.dispatch(jobs)
    if not promoted:
        return "already_promoted"
    if verdict is not FileState.CLEAN or record.sanitized:  # else the move emptied quarantine
        _tidy(storage, dataclasses.replace(record, state=verdict))
    # inspection.decided already said what happens to the file; this is its step.
    log.debug("file.promoted", file_id=file_id, tenant=record.tenant, state=verdict.value)
    return verdict.value


def _want_promote(db: Database, queue: JobQueue, file_id: str) -> None:
    with db.session() as session:
        job = Jobs(session).want(JobKind.PROMOTE, file_id)
    queue.dispatch([job] if job else [])


def place_bytes(
    storage: Storage, file_id: str, state: FileState, *, copy_in_clean: bool | None = None
) -> None:
    """Put a file's bytes where ``state`` keeps them, before the state says so: clean ones in
    the clean area, rejected ones aside in quarantine (promotion and the review console).

    ``copy_in_clean``: whether a sanitised copy is in the clean area already, when the caller
    knows (None: look). The upload is then left in quarantine, never moved over the copy."""
    if state is FileState.CLEAN:
        in_clean = storage.exists(Area.CLEAN, file_id) if copy_in_clean is None else copy_in_clean
        if not in_clean:
            storage.move(Area.QUARANTINE, Area.CLEAN, file_id)
    else:
        _park_rejected(storage, file_id)


def state_events(session: Session, record: FileRecord, state: FileState) -> list[JobRecord]:
    """The webhook event a file entering ``state`` sends, in the caller's transaction."""
    event = EventType.FILE_CLEAN if state is FileState.CLEAN else EventType.FILE_REJECTED
    data = {
        "file_id": record.id,
        "tenant": record.tenant,
        "state": state.value,
        "name": record.display_name,
        "size": record.size,
        "sha256": record.sha256,
        "received_sha256": record.received_sha256,
        "sanitized": bool(record.sanitized),
        "detected_type": record.detected_type,
        "profile": record.profile,
        "uploaded_by": record.uploaded_by,
        "findings": [f.as_dict() for f in record.findings],
    }
    return webhooks.emit(session, tenant=record.tenant, type_=event, subject=record.id, data=data)


def _tidy(storage: Storage, record: FileRecord) -> None:
    """After the flip: a clean file's upload is gone from quarantine (it was moved, or a
    sanitised copy replaced it); a rejected file has nothing in clean."""
    if record.state is FileState.CLEAN and storage.exists(Area.CLEAN, record.id):
        storage.delete(Area.QUARANTINE, record.id)
    elif record.state is FileState.REJECTED:
        _park_rejected(storage, record.id)


def _local_copy(storage: Storage, key: str, target: Path) -> str | None:
    """The object copied into the job's scratch directory, for a backend without local paths
    (S3): the inspectors and clamd read files. None when it is in neither area."""
    for area in (Area.QUARANTINE, Area.CLEAN):
        try:
            chunks = storage.read(area, key)  # one GET on S3; no HEAD first
        except FilegateError as exc:
            if exc.extra.get("missing"):
                continue
            raise
        with target.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return str(target)
    return None


def _judge(storage: Storage, inspector: Inspector, record: FileRecord, scratch: Path) -> _Judgement:
    # A crash between the move to clean and the DB update leaves the object in clean.
    path = (
        storage.local_path(Area.QUARANTINE, record.id)
        or storage.local_path(Area.CLEAN, record.id)
        or _local_copy(storage, record.id, scratch.parent / "upload")
    )
    if path is None:
        finding = Finding("stored_object_missing", "the uploaded bytes are no longer in storage")
        return _Judgement(Verdict(FileState.REJECTED, (finding,), None))
    try:
        policy = inspector.policy_for(record.profile)
    except FilegateError:
        finding = Finding("profile_unknown", f"profile {record.profile!r} is no longer configured")
        return _Judgement(Verdict(FileState.REJECTED, (finding,), None))
    request = SandboxRequest(
        path=path,
        original_name=record.original_name,
        declared_type=record.declared_type,
        size=record.size,
        policy=policy,
        sanitized_path=str(scratch),
    )
    result = inspector.run(request)
    verdict = _with_scan(result.verdict, path, inspector, policy)
    sanitized = scratch if result.sanitized_type and scratch.is_file() else None
    if sanitized is None:
        return _Judgement(verdict)
    verdict = Verdict(verdict.state, verdict.findings, result.sanitized_type)
    return _Judgement(verdict, sanitized, result.changes)


def _with_scan(
    verdict: Verdict, path: str, inspector: Inspector, policy: InspectionPolicy
) -> Verdict:
    """ClamAV runs last: the cheap structural checks have already rejected bombs."""
    if inspector.scanner is None or verdict.state is FileState.REJECTED:
        return verdict
    found = antivirus.scan(path, inspector.scanner)
    if not inspector.scanner_required:
        found = tuple(f for f in found if f.code != "scanner_unavailable")
    if not found:
        return verdict
    # Only the scanner's findings are judged here: the pipeline already decided the rest,
    # with its default actions (re-deciding them with the bare profile would lose those).
    rejecting = any(policy.action_for(f) is Action.REJECT for f in found)
    state = FileState.REJECTED if rejecting else verdict.state
    return Verdict(state, (*verdict.findings, *found), verdict.detected_type)


def _needs_retry(verdict: Verdict, inspector: Inspector) -> bool:
    return inspector.scanner_required and any(
        f.code == "scanner_unavailable" for f in verdict.findings
    )


def _note_retry(db: Database, record: FileRecord, verdict: Verdict) -> None:
    with db.session() as session:
        Files(session).note_findings(record.id, verdict.findings)
    log.warning("inspection.scanner_unavailable", file_id=record.id, tenant=record.tenant)


def _park_rejected(storage: Storage, file_id: str) -> None:
    """Rejected bytes stay in quarantine for review, never in clean."""
    if not storage.exists(Area.CLEAN, file_id):
        return
    if storage.exists(Area.QUARANTINE, file_id):
        storage.delete(Area.CLEAN, file_id)
    else:
        storage.move(Area.CLEAN, Area.QUARANTINE, file_id)


def _store_sanitized(storage: Storage, file_id: str, source: Path) -> tuple[int, str]:
    writer = storage.writer(Area.CLEAN, file_id)
    digest, size = hashlib.sha256(), 0
    try:
        with source.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return size, digest.hexdigest()


def _report(record: FileRecord, verdict: Verdict, seconds: float, *, sanitized: bool) -> None:
    metrics.INSPECTIONS.labels(verdict=verdict.state.value, profile=record.profile).inc()
    metrics.INSPECTION_SECONDS.observe(seconds)
    waited = (utcnow() - record.created_at).total_seconds()
    metrics.TIME_TO_VERDICT.labels(profile=record.profile).observe(max(waited, 0.0))
    signals.observe(signals.VERDICT_SECONDS, waited)
    signals.count(signals.VERDICTS, verdict.state.value)
    if verdict.state is FileState.REJECTED:
        for finding in verdict.findings:
            metrics.REJECTIONS.labels(code=finding.code, profile=record.profile).inc()
            signals.count(signals.REJECTIONS, finding.code)
    log.info(
        "inspection.decided",
        file_id=record.id,
        tenant=record.tenant,
        verdict=verdict.state.value,
        findings=[f.code for f in verdict.findings],
        detected_type=verdict.detected_type,
        sanitized=sanitized,
        duration_ms=round(seconds * 1000, 1),
    )


def reject_unprocessable(db: Database, queue: JobQueue, file_id: str) -> None:
    """Fail closed: a file the inspectors could not process is rejected, never promoted."""
    finding = Finding("inspection_failed", "inspection failed on every attempt")
    with db.session() as session:
        stored = Files(session).record_verdict(
            file_id, state=FileState.REJECTED, findings=(finding,), detected_type=None
        )
        job = Jobs(session).want(JobKind.PROMOTE, file_id) if stored else None
        record = Files(session).get(file_id) if stored else None
    queue.dispatch([job] if job else [])
    if record is not None:
        metrics.INSPECTIONS.labels(verdict=FileState.REJECTED.value, profile=record.profile).inc()
        metrics.REJECTIONS.labels(code=finding.code, profile=record.profile).inc()
        signals.count(signals.VERDICTS, FileState.REJECTED.value)
        signals.count(signals.REJECTIONS, finding.code)
        log.warning("inspection.gave_up", file_id=file_id)
