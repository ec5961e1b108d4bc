"""What `filegate jobs status` reports: the ledger's view per job type, and the broker's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily, Metric

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


class LedgerCollector:
    """Prometheus gauges read from the ledger at scrape time: jobs per job and state, and the
    oldest waiting job's age. The ledger is shared, so every API process reports the same
    numbers: aggregate them with max(), not sum() (docs/operations.md)."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def collect(self) -> Iterator[Metric]:
        if self.db is None:
            return
        now = utcnow()
        try:
            with self.db.session() as session:
                ledger = Jobs(session)
                counts, oldest = ledger.counts(), ledger.oldest_waiting(now)
        except Exception:
            return  # a scrape must not fail with the database; /readyz reports it
        jobs = GaugeMetricFamily(
            "filegate_jobs", "Jobs in the ledger by job kind and state.", labels=["kind", "state"]
        )
        for (kind, state), count in sorted(counts.items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        waiting = GaugeMetricFamily(
            "filegate_job_oldest_waiting_seconds",
            "Age of the oldest due job not yet started, by job (absent: none waits).",
            labels=["kind"],
        )
        for kind, since in sorted(oldest.items()):
            waiting.add_metric([kind], (now - since).total_seconds())
        yield waiting


# One per process: the registry is global, and the app factory runs once per app in tests.
LEDGER = LedgerCollector()
REGISTRY.register(LEDGER)
