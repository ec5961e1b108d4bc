"""The queue engine: huey, on a SQLite file (embedded) or on Redis (workers on many hosts).

huey carries triggers and runs the consumers and the cron schedules; the job ledger in the
database (``Jobs``) says what must run and what happened. A trigger is therefore allowed to be
lost or delivered twice: ``JobRunner.run`` claims the ledger row with a guarded UPDATE, and the
``rescan`` sweep re-sends any job whose trigger went missing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import structlog
from huey import Huey, RedisHuey, SqliteHuey, crontab, signals
from huey.consumer import Consumer, Worker

from filegate.config import Settings, parse_cron
from filegate.domain import SCHEDULED_JOBS, JobKind, JobRecord

log = structlog.get_logger(__name__)

RUN_TASK = "filegate.run"

Runner = Callable[[JobKind, str], None]
Firer = Callable[[JobKind], None]


# A Redis that accepts but never answers must not hold an upload's request (a job is sent
# after its commit) for ever: the send fails, is logged, and the rescan sends it again. The
# read timeout stays above huey's 1 s blocking pop, which would otherwise time out itself.
REDIS_CONNECT_SECONDS = 2.0
REDIS_READ_SECONDS = 5.0


# Triggers kept in memory while the broker is away; past this the lease recovery takes over.
MAX_UNSENT = 10_000
# A held kind's trigger that reaches this process anyway goes back to the queue this much later.
HAND_BACK_SECONDS = 5.0
# After a failed send, triggers are only kept for this long instead of each waiting on a
# broker that does not answer; a readiness check that reaches the broker ends it early.
RETRY_BROKEN_SECONDS = 5.0


def make_huey(settings: Settings) -> Huey:
    url = settings.resolved_queue_url
    # huey logs every task at INFO; the runner logs each job once, with its ids and outcome.
    logging.getLogger("huey").setLevel(logging.WARNING)
    if url.startswith(("redis://", "rediss://")):
        pool = redis.ConnectionPool.from_url(
            url, socket_connect_timeout=REDIS_CONNECT_SECONDS, socket_timeout=REDIS_READ_SECONDS
        )
        return RedisHuey(settings.queue_name, results=False, connection_pool=pool, utc=True)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    # No fsync: the ledger (synchronous=FULL) is the durable record; a lost trigger is re-sent.
    return SqliteHuey(settings.queue_name, results=False, filename=str(path), utc=True, timeout=15)


class Wakeup:
    """Wakes this process's idle worker threads when this process sends a job.

    huey's worker threads poll a SQLite queue, backing off to ``worker_poll_seconds`` while
    idle, so the first upload after a quiet spell waited up to that long (125 ms on average
    at the default) before anyone looked at it. The embedded worker shares the process with
    the API that sends its jobs, so it is told at once; a job from another process is still
    found by polling. (Redis needs none of this: its workers block on the list.)
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.sent = 0

    def notify(self) -> None:
        with self._condition:
            self.sent += 1
            self._condition.notify_all()

    def wait(self, seen: int, seconds: float) -> None:
        """Until a job is sent after the ``seen``-th, or ``seconds`` pass."""
        with self._condition:
            self._condition.wait_for(lambda: self.sent != seen, seconds)


class _WakeableWorker(Worker):  # type: ignore[misc]
    """huey's worker thread, whose idle sleep ends when this process sends a job."""

    wakeup: Wakeup
    delay: float
    max_delay: float
    backoff: float
    _seen: int = 0

    def loop(self, now: Any = None) -> None:
        # Read before looking at the queue: a job sent after that look wakes the sleep below.
        self._seen = self.wakeup.sent
        super().loop(now)

    def sleep(self) -> None:
        delay = min(self.delay, self.max_delay)
        self.wakeup.wait(self._seen, delay)
        self.delay = delay * self.backoff


class _Consumer(Consumer):  # type: ignore[misc]
    """huey's consumer with wakeable worker threads."""

    def __init__(self, huey: Huey, wakeup: Wakeup, **options: Any) -> None:
        self.wakeup = wakeup
        super().__init__(huey, **options)

    def _create_worker(self) -> Worker:
        worker = _WakeableWorker(
            huey=self.huey,
            default_delay=self.default_delay,
            max_delay=self.max_delay,
            backoff=self.backoff,
        )
        worker.wakeup = self.wakeup
        return worker


class _QuietConsumer(_Consumer):
    """A consumer that leaves the process's signal handlers alone (uvicorn owns them)."""

    def _set_signal_handlers(self) -> None:
        return None


class HueyQueue:
    """Sends job triggers to huey and runs them in consumers bound to a ``JobRunner``."""

    def __init__(self, huey: Huey, settings: Settings) -> None:
        self.huey = huey
        self._settings = settings
        self._runner: Runner | None = None
        self._task = huey.task(name=RUN_TASK)(self._run)
        self._consumer: Consumer | None = None
        self._unsent: dict[str, JobRecord] = {}
        self._broken_until = 0.0
        self._held_kinds: frozenset[JobKind] = frozenset()
        self._held: list[JobRecord] = []
        self._unsent_lock = threading.Lock()
        self._wakeup = Wakeup()

    def dispatch(self, jobs: Iterable[JobRecord]) -> None:
        """Send triggers; one the broker refuses is kept here and sent again with the next
        dispatch or readiness check that reaches it. (The ledger still says queued, so jobs
        beyond ``MAX_UNSENT``, or of a process that died, are re-sent after their lease.)"""
        pending = [*self._take_unsent(), *self._hold(jobs)]
        if time.monotonic() < self._broken_until:  # don't make every upload wait on it
            for job in pending:
                self._keep_unsent(job)
            return
        for index, job in enumerate(pending):
            try:
                self._send(job)
            except Exception as exc:
                self._broken_until = time.monotonic() + RETRY_BROKEN_SECONDS
                for unsent in pending[index:]:
                    self._keep_unsent(unsent)
                log.warning(
                    "job.dispatch_failed",
                    job=job.kind.value,
                    job_id=job.id,
                    error=type(exc).__name__,
                    unsent=len(self._unsent),
                )
                return

    def check(self) -> None:
        """One round trip to the broker: Redis's LLEN, or a read of the SQLite queue file."""
        self.huey.storage.queue_size()
        self._broken_until = 0.0
        if self._unsent:
            self.dispatch([])

    def hold(self, kinds: frozenset[JobKind]) -> None:
        """Neither send nor run jobs of ``kinds`` in this process until ``release_held``.

        `filegate import` holds webhook deliveries: they belong to the server's workers, which
        send them with the server's settings (allowed targets, timeouts), not the CLI's.
        """
        self._held_kinds = kinds

    def release_held(self) -> None:
        """Send the held triggers, for whichever worker takes them next."""
        held, self._held, self._held_kinds = self._held, [], frozenset()
        self.dispatch(held)

    def _hold(self, jobs: Iterable[JobRecord]) -> list[JobRecord]:
        if not self._held_kinds:
            return list(jobs)
        send: list[JobRecord] = []
        for job in jobs:
            (self._held if job.kind in self._held_kinds else send).append(job)
        return send

    def _take_unsent(self) -> list[JobRecord]:
        with self._unsent_lock:
            unsent, self._unsent = list(self._unsent.values()), {}
        return unsent

    def _keep_unsent(self, job: JobRecord) -> None:
        with self._unsent_lock:
            if len(self._unsent) < MAX_UNSENT:
                self._unsent[job.id] = job

    def _send(self, job: JobRecord) -> None:
        args = (job.kind.value, job.subject)
        if job.run_after > datetime.now(UTC):
            self._task.schedule(args, eta=job.run_after)
        else:
            self._task(*args)
            self._wakeup.notify()

    def bind(self, runner: Runner, fire: Firer, release: Runner) -> None:
        """Make this process able to run jobs: the trigger task and the cron schedules.

        ``release`` hands back jobs that a stop at once (SIGTERM) cut short, so another worker
        takes them now instead of after their lease.
        """
        self._runner = runner

        def interrupted(_signal: str, task: Any, *_: Any, **__: Any) -> None:
            if isinstance(task, self._task.task_class):
                kind, subject = task.args
                release(JobKind(kind), subject)

        self.huey.signal(signals.SIGNAL_INTERRUPTED)(interrupted)

        schedules = self._settings.schedules
        for kind in SCHEDULED_JOBS:
            expression = getattr(schedules, kind.value)
            if not expression:
                continue
            minute, hour, day, month, weekday = parse_cron(expression)
            self.huey.periodic_task(
                crontab(minute, hour, day, month, weekday, strict=True),
                name=f"filegate.schedule.{kind.value}",
            )(_Fire(fire, kind))

    def _run(self, kind: str, subject: str) -> None:
        if self._runner is None:
            raise RuntimeError("this process has no job runner (HueyQueue.bind was not called)")
        if JobKind(kind) in self._held_kinds:
            # Another process's job (a delivery queued by the server): hand it back for later.
            self._task.schedule((kind, subject), delay=HAND_BACK_SECONDS)
            return
        self._runner(JobKind(kind), subject)

    def consumer(self, *, quiet: bool) -> Consumer:
        cls = _QuietConsumer if quiet else _Consumer
        poll = self._settings.worker_poll_seconds
        return cls(
            self.huey,
            self._wakeup,
            workers=self._settings.worker_threads,
            worker_type="thread",
            initial_delay=min(0.05, poll),
            backoff=1.5,
            max_delay=poll,
            check_worker_health=True,
        )

    def start(self) -> None:
        """Run consumers in this process's threads (the embedded worker)."""
        self._consumer = self.consumer(quiet=True)
        self._consumer.start()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None

    def drain(self, *, wait_seconds: float = 0.0) -> int:
        """Run every job that is due now, in this thread (tests and `filegate jobs run`).

        With ``wait_seconds``, also waits that long for scheduled retries to come due.
        """
        done = 0
        deadline = time.monotonic() + wait_seconds
        while True:
            for task in self.huey.read_schedule():
                self.huey.enqueue(task)
            task = self.huey.dequeue()
            if task is not None:
                self.huey.execute(task)
                done += 1
                continue
            if time.monotonic() >= deadline or not self.huey.scheduled_count():
                return done
            time.sleep(0.05)

    def describe(self) -> str:
        """The queue without credentials, for status output."""
        url = self._settings.resolved_queue_url
        if "@" in url:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        return f"{url} (name {self._settings.queue_name})"

    def pending(self) -> int:
        return int(self.huey.pending_count()) + int(self.huey.scheduled_count())


class _Fire:
    """A periodic task body; a class so huey can name it and tests can call it."""

    def __init__(self, fire: Firer, kind: JobKind) -> None:
        self._fire, self.kind = fire, kind
        self.__name__ = f"schedule_{kind.value}"

    def __call__(self, *_: Any) -> None:
        self._fire(self.kind)
