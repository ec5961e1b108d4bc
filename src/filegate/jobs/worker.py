"""A worker: the huey consumer plus the job runner and the handler for every job kind.

Embedded (``make run``) it runs in threads of the API process; ``filegate worker`` runs the
same thing as its own process, any number of them, on any host that reaches the queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.domain import JobKind
from filegate.jobs.queue import HueyQueue
from filegate.jobs.runner import Handlers, JobRunner, Retry
from filegate.services import evictions, maintenance, webhooks
from filegate.services.inspection import Inspector, inspect_job, promote_job, reject_unprocessable
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

# A file whose inspection keeps raising is rejected rather than retried forever: fail closed.
INSPECT_ATTEMPTS = 3
# Purges retried for about a day (5 s doubling, capped at 6 h) before giving up.
EVICT_ATTEMPTS = 20
# Promotion is a rename and an UPDATE: failures are the storage or the DB being away for a bit.
PROMOTE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Worker:
    queue: HueyQueue
    runner: JobRunner
    warm_up: Callable[[], None] | None = None

    def start(self) -> None:
        """Run inside this process (embedded): consumer threads, cron schedules included.

        Returns at once: the sandbox warms up in the background (the API answers meanwhile;
        the first inspection waits for it).
        """
        threading.Thread(target=self._prepare, name="filegate-warm-up", daemon=True).start()
        self.queue.start()
        log.debug("worker.started", mode="embedded", worker=self.runner.worker_id)

    def stop(self) -> None:
        self.queue.stop()
        log.info("worker.stopped", worker=self.runner.worker_id)

    def run_forever(self) -> None:
        """``filegate worker``: the consumer owns the process (SIGINT/SIGTERM stop it)."""
        self._prepare()
        log.info("worker.started", mode="process", worker=self.runner.worker_id)
        self.queue.consumer(quiet=False).run()

    def drain(self, wait_seconds: float = 0.0) -> int:
        """Run every due job in this thread (tests, ``filegate import`` without a consumer)."""
        return self.queue.drain(wait_seconds=wait_seconds)

    def _prepare(self) -> None:
        try:
            # Jobs a killed worker held are taken over once their lease has run out.
            self.runner.recover()
        except Exception:
            log.exception("worker.recover_failed")  # the rescan schedule tries again
        if self.warm_up is not None:
            self.warm_up()
            log.debug("worker.inspector_ready", worker=self.runner.worker_id)


def build_worker(
    settings: Settings,
    db: Database,
    storage: Storage,
    queue: HueyQueue,
    inspector: Inspector,
) -> Worker:
    handlers = Handlers(
        run={
            JobKind.INSPECT: lambda s: inspect_job(db, storage, queue, inspector, s),
            JobKind.PROMOTE: lambda s: promote_job(db, storage, queue, s),
            JobKind.DELIVER: lambda s: webhooks.deliver(db, settings, s),
            JobKind.EXPIRE: lambda _: maintenance.expire_uploads(db, storage, queue),
            JobKind.RECONCILE: lambda _: maintenance.reconcile(
                db,
                storage,
                settings.reconcile_grace_seconds,
                evict=lambda keys: evictions.request(db, queue, settings, keys),
            ),
            # `runner` is bound below; the lambda looks it up when a rescan runs.
            JobKind.RESCAN: lambda _: maintenance.rescan(db, queue, runner.recover),
            JobKind.PURGE: lambda _: maintenance.purge(
                db,
                storage,
                settings.rejected_retention_seconds,
                settings.status_retention_days,
                tus_expiry_seconds=settings.tus_expiry_seconds,
            ),
            JobKind.EVICT: lambda key: evictions.evict(settings, key),
        },
        retry={
            JobKind.INSPECT: Retry(
                attempts=INSPECT_ATTEMPTS, first_delay=settings.job_retry_seconds
            ),
            JobKind.PROMOTE: Retry(
                attempts=PROMOTE_ATTEMPTS, first_delay=settings.job_retry_seconds
            ),
            JobKind.DELIVER: Retry(
                attempts=settings.webhook_max_attempts, first_delay=settings.webhook_retry_seconds
            ),
            # A cache that is down gets its purge when it is back (doubling, capped at 6 h).
            JobKind.EVICT: Retry(attempts=EVICT_ATTEMPTS, first_delay=settings.job_retry_seconds),
        },
        give_up={
            JobKind.INSPECT: lambda s: reject_unprocessable(db, queue, s),
            JobKind.DELIVER: lambda s: webhooks.give_up(db, s),
        },
    )
    runner = JobRunner(db, queue, handlers, settings.job_lease_seconds)
    queue.bind(runner.run, runner.fire, runner.release)
    return Worker(queue=queue, runner=runner, warm_up=inspector.warm_up)
