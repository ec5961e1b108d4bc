"""The inspection job: run the inspectors on a quarantined file and act on the verdict.

Safe to run twice or after a crash half-way: the verdict is written with a guarded update
(``WHERE state = 'quarantined'``) and storage moves are idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from filegate import metrics
from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.domain import Area, FileRecord, FileState, Finding, InspectionPolicy, Verdict
from filegate.errors import FilegateError
from filegate.inspect.pipeline import inspect_file
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

PolicyLookup = Callable[[str], InspectionPolicy]


def inspect_quarantined(
    db: Database, storage: Storage, policy_for: PolicyLookup, file_id: str
) -> FileState | None:
    """Inspect and decide one file; None when there was nothing to do (already decided)."""
    with db.session() as session:
        record = Files(session).get(file_id)
    if record is None or record.state is not FileState.QUARANTINED:
        return None
    started = time.monotonic()
    verdict = _verdict(storage, policy_for, record)
    _place_object(storage, record.id, verdict.state)
    with db.session() as session:
        decided = Files(session).decide(
            record.id,
            state=verdict.state,
            findings=verdict.findings,
            detected_type=verdict.detected_type,
        )
    if not decided:
        return None
    _report(record, verdict, time.monotonic() - started)
    return verdict.state


def _verdict(storage: Storage, policy_for: PolicyLookup, record: FileRecord) -> Verdict:
    # A crash between the move to clean and the DB update leaves the object in clean.
    path = storage.local_path(Area.QUARANTINE, record.id) or storage.local_path(
        Area.CLEAN, record.id
    )
    if path is None:
        finding = Finding("stored_object_missing", "the uploaded bytes are no longer in storage")
        return Verdict(FileState.REJECTED, (finding,), None)
    try:
        policy = policy_for(record.profile)
    except FilegateError:
        finding = Finding("profile_unknown", f"profile {record.profile!r} is no longer configured")
        return Verdict(FileState.REJECTED, (finding,), None)
    inspection = inspect_file(
        path,
        original_name=record.original_name,
        declared_type=record.declared_type,
        size=record.size,
        policy=policy,
    )
    return inspection.verdict


def _place_object(storage: Storage, file_id: str, state: FileState) -> None:
    if state is FileState.CLEAN:
        storage.move(Area.QUARANTINE, Area.CLEAN, file_id)
    elif storage.exists(Area.CLEAN, file_id):
        storage.move(Area.CLEAN, Area.QUARANTINE, file_id)


def _report(record: FileRecord, verdict: Verdict, seconds: float) -> None:
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
