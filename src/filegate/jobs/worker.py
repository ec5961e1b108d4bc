"""The first job runner: inspect every quarantined file, woken by uploads or by a poll.

The DB is the queue: a quarantined row *is* a pending inspection, so a crash loses nothing and
a restart picks up where it stopped. The embedded worker (``make run``) is woken at once by
``enqueue_inspection``; ``filegate worker`` processes wake by polling. The background-work issue
replaces this with an established queue engine behind the same ``JobQueue`` seam.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from filegate import metrics
from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.services.inspection import (
    Inspector,
    RetryLater,
    inspect_quarantined,
    reject_unprocessable,
)
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

BATCH = 50
# A file whose inspection keeps raising is rejected rather than retried forever: fail closed.
MAX_ATTEMPTS = 3
# A required scanner that is down is asked again after this long, not in a hot loop.
SCANNER_RETRY_SECONDS = 60.0


class InspectionWorker:
    def __init__(
        self, db: Database, storage: Storage, inspector: Inspector, poll_seconds: float
    ) -> None:
        self._db = db
        self._storage = storage
        self._inspector = inspector
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._attempts: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    def enqueue_inspection(self, file_id: str) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="filegate-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        log.info("worker.started", poll_seconds=self._poll_seconds)
        if self._inspector.warm_up is not None:
            self._inspector.warm_up()
        while not self._stop.is_set():
            self._wake.clear()
            if self.drain() == 0:
                self._wake.wait(self._poll_seconds)
        log.info("worker.stopped")

    def drain(self, should_stop: Callable[[], bool] | None = None) -> int:
        """Inspect every file that is quarantined now; returns how many were looked at."""
        done = 0
        now = time.monotonic()
        self._retry_at = {k: t for k, t in self._retry_at.items() if t > now}
        failed: set[str] = set(self._retry_at)
        stop = should_stop or self._stop.is_set
        while not stop():
            batch = self._pending(failed)
            if not batch:
                break
            for file_id in batch:
                if not self._inspect_one(file_id):
                    failed.add(file_id)
                done += 1
        return done

    def _pending(self, exclude: set[str]) -> list[str]:
        try:
            with self._db.session() as session:
                return Files(session).quarantined_ids(BATCH, exclude=exclude)
        except Exception:
            log.exception("worker.poll_failed")
            return []

    def _inspect_one(self, file_id: str) -> bool:
        try:
            inspect_quarantined(self._db, self._storage, self._inspector, file_id)
        except RetryLater:
            self._retry_at[file_id] = time.monotonic() + SCANNER_RETRY_SECONDS
            return False
        except Exception:
            metrics.JOB_FAILURES.labels(job="inspect").inc()
            log.exception("job.failed", job="inspect", file_id=file_id)
            self._attempts[file_id] = attempts = self._attempts.get(file_id, 0) + 1
            if attempts >= MAX_ATTEMPTS:
                self._give_up(file_id)
            return False
        self._attempts.pop(file_id, None)
        return True

    def _give_up(self, file_id: str) -> None:
        self._attempts.pop(file_id, None)
        try:
            reject_unprocessable(self._db, file_id, MAX_ATTEMPTS)
        except Exception:
            log.exception("job.give_up_failed", job="inspect", file_id=file_id)
