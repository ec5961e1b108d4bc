"""Runs one job: claim its ledger row, call its handler, record the outcome, retry or give up.

Every job is keyed (kind, subject): per-file jobs by the file id, deliveries by the event id,
schedules by the minute they fired for. ``run`` claims the row with a guarded UPDATE, so a
duplicate trigger, or the same schedule firing on two workers, finds nothing to claim.
A worker killed mid-job leaves its row ``running``; once ``job_lease_seconds`` have passed the
``rescan`` sweep (and every worker at start-up) hands it to a live worker. Handlers are
idempotent, so a job cut short and run again ends exactly as one clean run would.
"""

from __future__ import annotations

import re
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from filegate import metrics, signals
from filegate.db.engine import Database
from filegate.db.repository import Jobs
from filegate.domain import SCHEDULED_JOBS, JobKind, JobRecord, utcnow
from filegate.jobs.base import ExpectedJobFailure, JobQueue

log = structlog.get_logger(__name__)

# A handler does the work for one subject and says what it did ("clean", "nothing_to_do", ...).
Handler = Callable[[str], str]
GiveUp = Callable[[str], None]

# Per-file jobs log the subject as file_id too, so one grep finds a file's whole history.
FILE_JOBS = (JobKind.INSPECT, JobKind.PROMOTE)
RECOVER_BATCH = 500
RELEASE_DELAY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempts before giving up, and the first delay (doubling, capped) between them."""

    attempts: int = 1
    first_delay: float = 5.0
    max_delay: float = 6 * 3600.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first_delay * 2 ** max(attempt - 1, 0), self.max_delay))


@dataclass(frozen=True, slots=True)
class Handlers:
    run: Mapping[JobKind, Handler]
    retry: Mapping[JobKind, Retry] = field(default_factory=dict)
    give_up: Mapping[JobKind, GiveUp] = field(default_factory=dict)


class JobRunner:
    def __init__(
        self, db: Database, queue: JobQueue, handlers: Handlers, lease_seconds: float
    ) -> None:
        self._db = db
        self._queue = queue
        self._handlers = handlers
        self._lease = timedelta(seconds=lease_seconds)
        self.worker_id = f"{socket.gethostname()}:{id(self):x}"

    def run(self, kind: JobKind, subject: str) -> None:
        """Run (kind, subject) if its ledger row is due and nobody else holds it."""
        with self._db.session() as session:
            job = Jobs(session).claim(kind, subject, self._lease)
        if job is None:
            log.debug("job.skipped", job=kind.value, subject=subject, reason="not_due_or_held")
            return
        self._execute(job)

    def fire(self, kind: JobKind) -> None:
        """A schedule fired: run it unless this minute's run exists (another worker, a repeat)."""
        slot = datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%MZ")
        self.fire_slot(kind, slot)

    def fire_slot(self, kind: JobKind, slot: str) -> bool:
        with self._db.session() as session:
            job = Jobs(session).start_once(kind, slot)
        if job is None:
            log.info("schedule.skipped", job=kind.value, slot=slot, reason="already_ran")
            metrics.JOB_RUNS.labels(kind=kind.value, outcome="skipped").inc()
            return False
        self._execute(job)
        return True

    def release(self, kind: JobKind, subject: str) -> None:
        """Give a job this worker was cut off from back to the queue, for another worker.

        Due a few seconds from now, not at once: this process's other threads are still
        taking jobs while it exits, and one of them must not pick this one up again.
        """
        due = utcnow() + timedelta(seconds=RELEASE_DELAY_SECONDS)
        with self._db.session() as session:
            job = Jobs(session).release(kind, subject, due)
        if job is not None:
            log.warning("job.released", job=kind.value, job_id=job.id, subject=subject)
            self._queue.dispatch([job])

    def recover(self) -> int:
        """Re-send jobs whose trigger was lost or whose worker died (held past the lease)."""
        with self._db.session() as session:
            stalled = Jobs(session).stalled(utcnow(), self._lease, RECOVER_BATCH)
        if stalled:
            log.warning(
                "jobs.recovered",
                count=len(stalled),
                jobs=[f"{j.kind.value}:{j.subject}" for j in stalled[:20]],
            )
            self._queue.dispatch(stalled)
        return len(stalled)

    def _execute(self, job: JobRecord) -> None:
        # Every line the job logs, its handler's included, carries its ids and its request's.
        with structlog.contextvars.bound_contextvars(**_context(job)):
            log.debug("job.started", attempt=job.attempts, worker=self.worker_id)
            started = time.monotonic()
            handler = self._handlers.run[job.kind]
            try:
                outcome = handler(job.subject)
            except Exception as exc:
                self._failed(job, exc, time.monotonic() - started)
                return
            seconds = time.monotonic() - started
            with self._db.session() as session:
                recorded = Jobs(session).finish(job.id, job.started_at, outcome)
            metrics.JOB_RUNS.labels(kind=job.kind.value, outcome=outcome_label(outcome)).inc()
            metrics.JOB_SECONDS.labels(kind=job.kind.value).observe(seconds)
            signals.count(signals.JOB_RUNS, job.kind.value)
            # The jobs' own events (inspection.decided, file.promoted, webhook.delivery) say
            # what happened; this line is for debugging, or a schedule that found something.
            (log.info if _did_something(job.kind, outcome) else log.debug)(
                "job.finished",
                outcome=outcome,
                duration_ms=round(seconds * 1000, 1),
                # False when the lease ran out and another worker took the job over meanwhile.
                recorded=recorded,
            )

    def _failed(self, job: JobRecord, exc: Exception, seconds: float) -> None:
        retry = self._handlers.retry.get(job.kind, Retry())
        error = f"{exc.__class__.__name__}: {exc}"[:1024]
        again = job.attempts < retry.attempts
        retry_at = utcnow() + timedelta(seconds=retry.delay(job.attempts)) if again else None
        with self._db.session() as session:
            recorded = Jobs(session).fail(job.id, job.started_at, error, retry_at)
            again_job = Jobs(session).get(job.kind, job.subject) if recorded and again else None
        metrics.JOB_FAILURES.labels(kind=job.kind.value).inc()
        metrics.JOB_SECONDS.labels(kind=job.kind.value).observe(seconds)
        signals.count(signals.JOB_RUNS, job.kind.value)
        signals.count(signals.JOB_FAILURES, job.kind.value)
        expected = isinstance(exc, ExpectedJobFailure)  # the target's fault: no traceback
        (log.warning if expected else log.error)(
            "job.failed",
            attempt=job.attempts,
            error=error,
            retry_at=retry_at.isoformat() if retry_at else None,
            duration_ms=round(seconds * 1000, 1),
            **({} if expected else {"traceback": "".join(traceback.format_exception(exc)[-3:])}),
        )
        if again_job is not None:
            self._queue.dispatch([again_job])
        elif recorded and not again:
            give_up = self._handlers.give_up.get(job.kind)
            if give_up is not None:
                give_up(job.subject)
            log.error("job.gave_up", attempts=job.attempts)


def _did_something(kind: JobKind, outcome: str) -> bool:
    """A schedule whose summary counts anything (``requeued=3 recovered=0``)."""
    return kind in SCHEDULED_JOBS and any(
        count not in ("", "0") for _, _, count in (part.partition("=") for part in outcome.split())
    )


def _context(job: JobRecord) -> dict[str, str]:
    context = {"job": job.kind.value, "job_id": job.id, "subject": job.subject}
    if job.kind in FILE_JOBS:
        context["file_id"] = job.subject
    if job.request_id:
        context["request_id"] = job.request_id
    return context


# File jobs end with a word from a fixed set in the code ("clean", "already_promoted", ...);
# schedules end with counts ("requeued=3 recovered=0"), which as a label would make a new
# Prometheus series per count.
_OUTCOME_WORD = re.compile(r"[a-z_]{1,40}")


def outcome_label(outcome: str) -> str:
    """The metric label for a job's outcome: its word, or ``done`` for a summary of counts."""
    return outcome if _OUTCOME_WORD.fullmatch(outcome) else "done"
