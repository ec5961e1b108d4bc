"""What `filegate jobs status` reports: the ledger's view per job type, and the broker's."""

from __future__ import annotations

from typing import Any

from filegate.db.engine import Database
from filegate.db.repository import Jobs
from filegate.domain import JobKind, JobState, utcnow
from filegate.jobs.queue import HueyQueue

RECENT_FAILURES = 10


def job_status(db: Database, queue: HueyQueue) -> dict[str, Any]:
    now = utcnow()
    with db.session() as session:
        ledger = Jobs(session)
        counts = ledger.counts()
        oldest = ledger.oldest_waiting(now)
        failures = ledger.recent_failures(RECENT_FAILURES)
    jobs: dict[str, dict[str, Any]] = {}
    for kind in JobKind:
        waiting_since = oldest.get(kind.value)
        jobs[kind.value] = {
            **{state.value: counts.get((kind.value, state.value), 0) for state in JobState},
            "oldest_waiting_seconds": (
                round((now - waiting_since).total_seconds(), 1) if waiting_since else None
            ),
        }
    try:
        pending: int | None = queue.pending()
    except Exception:
        pending = None  # the broker is down: the ledger still answers
    return {
        "jobs": jobs,
        "broker_pending": pending,
        "queue": queue.describe(),
        "recent_failures": [
            {
                "job": job.kind.value,
                "subject": job.subject,
                "attempts": job.attempts,
                "error": job.error,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            }
            for job in failures
        ],
    }
