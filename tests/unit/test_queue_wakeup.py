"""An idle embedded worker takes a job its own process sent at once, not at its next poll."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from filegate.config import Settings
from filegate.domain import JobKind, JobRecord, JobState, new_id, utcnow
from filegate.jobs.queue import HueyQueue, make_huey

POLL = 2.0
# Idle long enough for the worker's backoff to reach the full poll interval.
IDLE = POLL + 1.0


def _job() -> JobRecord:
    now = utcnow() - timedelta(seconds=1)
    return JobRecord(
        id=new_id(),
        kind=JobKind.INSPECT,
        subject=new_id(),
        state=JobState.QUEUED,
        attempts=0,
        run_after=now,
        enqueued_at=now,
        started_at=None,
        finished_at=None,
        outcome=None,
        error=None,
    )


def test_an_idle_worker_is_woken_by_a_job_sent_in_its_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_poll_seconds=POLL)
    queue = HueyQueue(make_huey(settings), settings)
    ran: list[float] = []
    done = threading.Event()

    def run(kind: JobKind, subject: str) -> None:
        ran.append(time.monotonic())
        done.set()

    queue.bind(run, lambda kind: None, lambda kind, subject: None)
    queue.start()
    try:
        time.sleep(IDLE)
        sent = time.monotonic()
        queue.dispatch([_job()])
        assert done.wait(POLL * 3)
    finally:
        queue.stop()
    # Polling alone would have found it up to POLL seconds later.
    assert ran[0] - sent < POLL / 4, ran[0] - sent
