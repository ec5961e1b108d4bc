"""The job ledger: one row per (kind, subject), claimed with guarded UPDATEs."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Select, Table, Update, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from filegate.db.models import (
    JobRow,
)
from filegate.db.repository.base import insert_new, rows_changed
from filegate.domain import (
    JobKind,
    JobRecord,
    JobState,
    new_id,
    utcnow,
)

_JOBS = cast(Table, JobRow.__table__)


def _current_request_id() -> str | None:
    """The request (or the job, which carries its request's id) this job is wanted from.

    Read from the log context the request middleware and the job runner bind, so every call
    site that queues a job passes it on without threading it through each service.
    """
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


def _job_record(row: Any) -> JobRecord:
    # ``row``: a JobRow, or a Core row of the jobs table (same names).
    return JobRecord(
        id=row.id,
        kind=JobKind(row.kind),
        subject=row.subject,
        state=JobState(row.state),
        attempts=row.attempts,
        run_after=row.run_after,
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        error=row.error,
        request_id=row.request_id,
    )


def claim_statement(kind: JobKind, subject: str, lease: timedelta, now: datetime) -> Update:
    """UPDATE ... RETURNING: the claim and the claimed row in one statement."""
    jobs = _JOBS.c
    return (
        update(_JOBS)
        .where(
            jobs.kind == kind.value,
            jobs.subject == subject,
            or_(
                and_(jobs.state == JobState.QUEUED.value, jobs.run_after <= now),
                and_(jobs.state == JobState.RUNNING.value, jobs.started_at < now - lease),
            ),
        )
        .values(
            state=JobState.RUNNING.value,
            started_at=now,
            finished_at=None,
            attempts=jobs.attempts + 1,
        )
        .returning(*jobs)
    )


def stalled_query(now: datetime, lease: timedelta, limit: int) -> Select[JobRow]:
    return (
        select(JobRow)
        .where(
            or_(
                and_(JobRow.state == JobState.QUEUED.value, JobRow.run_after < now - lease),
                and_(JobRow.state == JobState.RUNNING.value, JobRow.started_at < now - lease),
            )
        )
        .order_by(JobRow.run_after)
        .limit(limit)
    )


def oldest_waiting_query(now: datetime) -> Select[str, datetime]:
    return (
        select(JobRow.kind, func.min(JobRow.enqueued_at))
        .where(JobRow.state == JobState.QUEUED.value, JobRow.run_after <= now)
        .group_by(JobRow.kind)
    )


def recent_failures_query(limit: int) -> Select[JobRow]:
    return (
        select(JobRow)
        .where(JobRow.state == JobState.FAILED.value)
        .order_by(JobRow.finished_at.desc())
        .limit(limit)
    )


class Jobs:
    """The job ledger. Every transition is a guarded UPDATE, so two workers cannot both win."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def want(
        self, kind: JobKind, subject: str, *, run_after: datetime | None = None
    ) -> JobRecord | None:
        """Ask for (kind, subject) to run, in the caller's transaction.

        Returns the job to dispatch after the commit, or None when it is already queued or
        running (one trigger is enough). A finished job is queued again: the handlers are
        idempotent and decide from the current state what, if anything, is left to do.
        """
        now = utcnow()
        when = run_after or now
        inserted = self._insert(kind, subject, now=now, run_after=when)
        if inserted is not None:
            return inserted
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.kind == kind.value,
                JobRow.subject == subject,
                JobRow.state.in_([JobState.DONE.value, JobState.FAILED.value]),
            )
            .values(
                state=JobState.QUEUED.value,
                attempts=0,
                run_after=when,
                enqueued_at=now,
                outcome=None,
                error=None,
                request_id=_current_request_id(),
            )
        )
        if not rows_changed(result):
            return None
        return self.get(kind, subject)

    def start_once(self, kind: JobKind, subject: str) -> JobRecord | None:
        """Insert a job already running (a schedule slot); None if it exists in any state."""
        now = utcnow()
        return self._insert(kind, subject, now=now, run_after=now, started=True)

    def _insert(
        self,
        kind: JobKind,
        subject: str,
        *,
        now: datetime,
        run_after: datetime,
        started: bool = False,
    ) -> JobRecord | None:
        """A new row for (kind, subject), queued or (``started``) running; None if one exists."""
        values: dict[str, Any] = {
            "id": new_id(),
            "kind": kind.value,
            "subject": subject,
            "state": (JobState.RUNNING if started else JobState.QUEUED).value,
            "attempts": 1 if started else 0,
            "run_after": run_after,
            "enqueued_at": now,
            "started_at": now if started else None,
            "request_id": _current_request_id(),
        }
        if not insert_new(self.session, JobRow, values):
            return None
        return _job_record(JobRow(**values))

    def get(self, kind: JobKind, subject: str) -> JobRecord | None:
        # populate_existing: the guarded UPDATEs above bypass the identity map, so a row
        # loaded earlier in this session would otherwise come back stale (one query, no refresh).
        query = (
            select(JobRow)
            .where(JobRow.kind == kind.value, JobRow.subject == subject)
            .execution_options(populate_existing=True)
        )
        row = self.session.scalars(query).one_or_none()
        return _job_record(row) if row else None

    def claim(self, kind: JobKind, subject: str, lease: timedelta) -> JobRecord | None:
        """Take a job that is due, or whose runner has held it longer than ``lease`` (crashed)."""
        row = self.session.execute(claim_statement(kind, subject, lease, utcnow())).one_or_none()
        return _job_record(row) if row is not None else None

    def release(self, kind: JobKind, subject: str, run_after: datetime) -> JobRecord | None:
        """A running job whose worker is stopping goes back to queued, due at ``run_after``."""
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.kind == kind.value,
                JobRow.subject == subject,
                JobRow.state == JobState.RUNNING.value,
            )
            .values(state=JobState.QUEUED.value, run_after=run_after, started_at=None)
        )
        return self.get(kind, subject) if rows_changed(result) else None

    def finish(self, job_id: str, started_at: datetime | None, outcome: str) -> bool:
        """Mark done; guarded by the claim's start time so a runner that lost its lease can't."""
        return self._end(job_id, started_at, state=JobState.DONE, outcome=outcome, error=None)

    def fail(
        self, job_id: str, started_at: datetime | None, error: str, retry_at: datetime | None
    ) -> bool:
        """Queue again at ``retry_at``, or (None) give up: the job stays visible as failed."""
        if retry_at is None:
            return self._end(job_id, started_at, state=JobState.FAILED, outcome=None, error=error)
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.state == JobState.RUNNING.value,
                JobRow.started_at == started_at,
            )
            .values(state=JobState.QUEUED.value, run_after=retry_at, error=error[:1024])
        )
        return rows_changed(result) > 0

    def _end(
        self,
        job_id: str,
        started_at: datetime | None,
        *,
        state: JobState,
        outcome: str | None,
        error: str | None,
    ) -> bool:
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.state == JobState.RUNNING.value,
                JobRow.started_at == started_at,
            )
            .values(
                state=state.value,
                finished_at=utcnow(),
                outcome=outcome,
                error=error[:1024] if error else None,
            )
        )
        return rows_changed(result) > 0

    def stalled(self, now: datetime, lease: timedelta, limit: int) -> list[JobRecord]:
        """Jobs whose trigger was lost: queued and overdue by a lease, or running past it."""
        return [_job_record(row) for row in self.session.scalars(stalled_query(now, lease, limit))]

    def active(self, kind: JobKind, subjects: Collection[str]) -> set[str]:
        """Which of ``subjects`` have a queued or running job of ``kind``."""
        if not subjects:
            return set()
        query = select(JobRow.subject).where(
            JobRow.kind == kind.value,
            JobRow.subject.in_(list(subjects)),
            JobRow.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        )
        return set(self.session.scalars(query))

    def counts(self) -> dict[tuple[str, str], int]:
        query = select(JobRow.kind, JobRow.state, func.count()).group_by(JobRow.kind, JobRow.state)
        return {(kind, state): count for kind, state, count in self.session.execute(query)}

    def oldest_waiting(self, now: datetime) -> dict[str, datetime]:
        """Per kind, the enqueue time of the oldest job that is due and not yet started."""
        return {str(kind): when for kind, when in self.session.execute(oldest_waiting_query(now))}

    def recent_failures(self, limit: int) -> list[JobRecord]:
        return [_job_record(row) for row in self.session.scalars(recent_failures_query(limit))]

    def forget_finished(self, cutoff: datetime, kinds: Iterable[JobKind]) -> int:
        """Drop finished ledger rows of ``kinds`` older than ``cutoff`` (schedule slots pile up)."""
        result = self.session.execute(
            delete(JobRow).where(
                JobRow.state == JobState.DONE.value,
                JobRow.kind.in_([k.value for k in kinds]),
                JobRow.finished_at < cutoff,
            )
        )
        return rows_changed(result)
