"""The inspection job: inspect a quarantined file in the sandbox, scan it, act on the verdict.

Safe to run twice or after a crash half-way: the verdict is written with a guarded update
(``WHERE state = 'quarantined'``), storage moves are idempotent, and a sanitised copy is
written to clean before the verdict and the original removed only after it.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from filegate import metrics
from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.domain import (
    Action,
    Area,
    FileRecord,
    FileState,
    Finding,
    InspectionPolicy,
    Verdict,
)
from filegate.errors import FilegateError
from filegate.inspect import antivirus
from filegate.inspect.base import Job, Result
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

PolicyLookup = Callable[[str], InspectionPolicy]
RunJob = Callable[[Job], Result]


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


class RetryLater(Exception):
    """The scanner is required and could not answer: leave the file quarantined for now."""


def inspect_quarantined(
    db: Database, storage: Storage, inspector: Inspector, file_id: str
) -> FileState | None:
    """Inspect and decide one file; None when there was nothing to do (already decided)."""
    with db.session() as session:
        record = Files(session).get(file_id)
    if record is None or record.state is not FileState.QUARANTINED:
        return None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="filegate-inspect-") as scratch:
        judgement = _judge(storage, inspector, record, Path(scratch) / "sanitized")
        if _needs_retry(judgement.verdict, inspector):
            _note_retry(db, record, judgement.verdict)
            raise RetryLater(record.id)
        size, sha256 = _place_object(storage, record, judgement)
    verdict = judgement.verdict
    with db.session() as session:
        decided = Files(session).decide(
            record.id,
            state=verdict.state,
            findings=verdict.findings,
            detected_type=verdict.detected_type,
            size=size,
            sha256=sha256,
        )
    if not decided:
        # Another worker decided first; put the bytes where its verdict says, not ours.
        _settle(db, storage, record.id)
        return None
    if verdict.state is FileState.REJECTED:
        _park_rejected(storage, record.id)
    if judgement.sanitized is not None:
        storage.delete(Area.QUARANTINE, record.id)
    _report(record, verdict, time.monotonic() - started, sanitized=judgement.sanitized is not None)
    return verdict.state


def _judge(storage: Storage, inspector: Inspector, record: FileRecord, scratch: Path) -> _Judgement:
    # A crash between the move to clean and the DB update leaves the object in clean.
    path = storage.local_path(Area.QUARANTINE, record.id) or storage.local_path(
        Area.CLEAN, record.id
    )
    if path is None:
        finding = Finding("stored_object_missing", "the uploaded bytes are no longer in storage")
        return _Judgement(Verdict(FileState.REJECTED, (finding,), None))
    try:
        policy = inspector.policy_for(record.profile)
    except FilegateError:
        finding = Finding("profile_unknown", f"profile {record.profile!r} is no longer configured")
        return _Judgement(Verdict(FileState.REJECTED, (finding,), None))
    job = Job(
        path=path,
        original_name=record.original_name,
        declared_type=record.declared_type,
        size=record.size,
        policy=policy,
        sanitized_path=str(scratch),
    )
    result = inspector.run(job)
    verdict = _with_scan(result.verdict, path, inspector, policy)
    sanitized = scratch if result.sanitized_type and scratch.is_file() else None
    if sanitized is not None:
        verdict = Verdict(verdict.state, verdict.findings, result.sanitized_type)
    return _Judgement(verdict, sanitized)


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


def _place_object(
    storage: Storage, record: FileRecord, judgement: _Judgement
) -> tuple[int | None, str | None]:
    """Before the verdict is written, make a clean verdict's bytes servable.

    Returns the new size and sha256 when a sanitised copy replaces the upload. A rejection
    moves nothing yet: only the worker whose verdict is written may move bytes out of clean.
    """
    if judgement.verdict.state is not FileState.CLEAN:
        return None, None
    if judgement.sanitized is None:
        storage.move(Area.QUARANTINE, Area.CLEAN, record.id)
        return None, None
    return _store_sanitized(storage, record.id, judgement.sanitized)


def _park_rejected(storage: Storage, file_id: str) -> None:
    """Rejected bytes stay in quarantine for review, never in clean."""
    if not storage.exists(Area.CLEAN, file_id):
        return
    if storage.exists(Area.QUARANTINE, file_id):
        storage.delete(Area.CLEAN, file_id)
    else:
        storage.move(Area.CLEAN, Area.QUARANTINE, file_id)


def _settle(db: Database, storage: Storage, file_id: str) -> None:
    """Undo what a losing worker did to storage, by the verdict that was written."""
    with db.session() as session:
        record = Files(session).get(file_id)
    if record is None or record.state is FileState.QUARANTINED:
        return
    if record.state is FileState.REJECTED:
        _park_rejected(storage, file_id)
    elif not storage.exists(Area.CLEAN, file_id):
        storage.move(Area.QUARANTINE, Area.CLEAN, file_id)


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
    metrics.INSPECTIONS.labels(verdict=verdict.state.value).inc()
    metrics.INSPECTION_SECONDS.observe(seconds)
    if verdict.state is FileState.REJECTED:
        for finding in verdict.findings:
            metrics.REJECTIONS.labels(code=finding.code).inc()
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


def reject_unprocessable(db: Database, file_id: str, attempts: int) -> None:
    """Fail closed: a file the inspectors could not process is rejected, never promoted."""
    finding = Finding("inspection_failed", f"inspection failed {attempts} times")
    with db.session() as session:
        decided = Files(session).decide(
            file_id, state=FileState.REJECTED, findings=(finding,), detected_type=None
        )
    if decided:
        metrics.INSPECTIONS.labels(verdict=FileState.REJECTED.value).inc()
        metrics.REJECTIONS.labels(code=finding.code).inc()
        log.warning("inspection.gave_up", file_id=file_id, attempts=attempts)
