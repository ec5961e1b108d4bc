"""Per-minute signals for the status page: counted in memory, written to the database.

Prometheus counters live and die with their process, and each process has its own. The status
page must say the same whichever API process answers, and still know the last release after a
restart, so the few numbers it needs are also kept here: summed per minute in memory (a dict
update under a lock on the request path) and added to ``signal_minutes`` by a writer thread
every few seconds, keyed by the release this process runs. A crash loses the unwritten
seconds; each flush is one transaction, so it never leaves half a minute behind.

Every process that serves also keeps its row in ``processes`` fresh on each flush: which
release it runs, since when, last heard of when. Deployments are read from there.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from datetime import datetime

import structlog

from filegate.db.engine import Database
from filegate.db.repository import Processes, Signals
from filegate.domain import new_id, utcnow

log = structlog.get_logger(__name__)

# Signal names, with what their label says.
REQUESTS = "http.requests"  # status class: 2xx, 3xx, 4xx, 5xx (probes and scrapes left out)
UPLOADS = "uploads"  # accepted, tus_completed, or the error code that refused the upload
UPLOAD_SECONDS = "upload.seconds"  # histogram: a direct upload, first byte in to 2xx out
FIRST_BYTE_SECONDS = "download.first_byte_seconds"  # histogram: request in to headers out
VERDICT_SECONDS = "verdict.seconds"  # histogram: upload complete to verdict
VERDICTS = "verdicts"  # clean, rejected
REJECTIONS = "rejections"  # the finding code that rejected a file
JOB_RUNS = "job.runs"  # job kind; every finished run, failed ones included
JOB_FAILURES = "job.failures"  # job kind
WEBHOOK_DELIVERIES = "webhook.deliveries"  # delivered, http_5xx, timeout, ...

HISTOGRAMS = (UPLOAD_SECONDS, FIRST_BYTE_SECONDS, VERDICT_SECONDS)
# Upper bounds in seconds; a bucket's row is labelled with its bound ("+Inf" for the last).
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, math.inf)

FLUSH_SECONDS = 5.0
MAX_LABEL = 64
# Rows held while the database is unreachable; past this the oldest minutes are dropped (a
# long outage loses status history, never the process's memory).
MAX_PENDING = 20_000

Key = tuple[datetime, str, str]  # minute, signal, label


def bucket_label(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def bucket_bound(label: str) -> float:
    return math.inf if label == "+Inf" else float(label)


class Recorder:
    """This process's unwritten signals: (minute, signal, label) -> [count, total]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, list[float]] = {}

    def count(self, signal: str, label: str = "", n: int = 1) -> None:
        self._add((_this_minute(), signal, label[:MAX_LABEL]), n, 0.0)

    def observe(self, signal: str, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        bound = next(b for b in BUCKETS if seconds <= b)
        self._add((_this_minute(), signal, bucket_label(bound)), 1, seconds)

    def _add(self, key: Key, n: int, total: float) -> None:
        with self._lock:
            slot = self._pending.get(key)
            if slot is None:
                self._pending[key] = [n, total]
            else:
                slot[0] += n
                slot[1] += total

    def take(self) -> dict[Key, list[float]]:
        """Everything recorded so far; the recorder starts empty again."""
        with self._lock:
            taken, self._pending = self._pending, {}
        return taken

    def give_back(self, rows: Mapping[Key, list[float]]) -> None:
        """Rows a failed flush could not write, to try again with the next one."""
        with self._lock:
            for key, (n, total) in rows.items():
                slot = self._pending.setdefault(key, [0, 0.0])
                slot[0] += n
                slot[1] += total
            if len(self._pending) > MAX_PENDING:
                for key in sorted(self._pending)[: len(self._pending) - MAX_PENDING]:
                    del self._pending[key]


def _this_minute() -> datetime:
    return utcnow().replace(second=0, microsecond=0)


# One per process, like the Prometheus registry; the writer empties it.
RECORDER = Recorder()
count = RECORDER.count
observe = RECORDER.observe


class SignalWriter:
    """Adds this process's signals to the database every ``interval`` seconds, and keeps
    its ``processes`` row fresh. ``role``: api, worker, or api+worker."""

    def __init__(
        self,
        db: Database,
        release: str,
        role: str,
        *,
        interval: float = FLUSH_SECONDS,
        recorder: Recorder = RECORDER,
    ) -> None:
        self._db = db
        self.release = release
        self.role = role
        self.process_id = new_id()
        self._interval = interval
        self._recorder = recorder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = False
        self._failing_since: float | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="filegate-signals", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is left and stop (the process is shutting down)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)
        self.flush()

    def _loop(self) -> None:
        while True:
            self.flush()
            if self._stop.wait(self._interval):
                return

    def flush(self) -> bool:
        """One transaction: the signals since the last flush, and this process's heartbeat."""
        rows = self._recorder.take()
        now = utcnow()
        try:
            with self._db.session() as session:
                if not self._registered:
                    Processes(session).register(
                        self.process_id,
                        release=self.release,
                        role=self.role,
                        hostname=socket.gethostname(),
                        pid=os.getpid(),
                        now=now,
                    )
                else:
                    Processes(session).heartbeat(self.process_id, now)
                Signals(session).add(self.release, rows)
        except Exception as exc:
            self._recorder.give_back(rows)
            self._log_failure(exc)
            return False
        self._registered = True
        if self._failing_since is not None:
            log.info("signals.flushing_again")
            self._failing_since = None
        return True

    def _log_failure(self, exc: Exception) -> None:
        # Once when it starts failing, then once a minute: the database being down is
        # reported by /readyz and the status page; this is only the writer's part of it.
        now = time.monotonic()
        if self._failing_since is None or now - self._failing_since >= 60:
            log.warning("signals.flush_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            self._failing_since = now
