"""Readiness: can this process reach what it needs (database, storage, queue, scanner)?

Answered from a short cache, one probe round at a time, each probe on threads of its own with
a deadline. A dependency that accepts connections and never answers then costs one stuck
probe thread, not the threads requests run on: ten unauthenticated ``/readyz`` calls against a
silent clamd used to hold ten of the eight blocking threads for 30 s each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from filegate import metrics
from filegate.inspect import antivirus
from filegate.services.runtime import Runtime, scanner_config

log = structlog.get_logger(__name__)

# Load balancers and orchestrators give a probe one to a few seconds; a dependency slower
# than this is not ready for the requests behind them either.
PROBE_SECONDS = 2.0
# They poll every few seconds, from several places; within this window they share one answer.
CACHE_SECONDS = 2.0
# One running probe per dependency, plus room for as many stuck behind a hung one.
PROBE_THREADS = 8

# A probe raises when its dependency fails; what it returns (if anything) is kept as a fact
# about the dependency (the scanner's signature date).
Probe = Callable[[], object]


@dataclass(frozen=True, slots=True)
class Report:
    ready: bool
    checks: dict[str, str]
    facts: dict[str, object] = field(default_factory=dict)


class Readiness:
    """Runs ``probes`` (each raises when its dependency fails); ``optional`` ones do not make
    the process unready, and a name mapped to None is reported ``off``."""

    def __init__(self, probes: Mapping[str, Probe | None], optional: frozenset[str]) -> None:
        self._probes = dict(probes)
        self._optional = optional
        self._pool = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="filegate-readyz")
        self._running: set[Future[object]] = set()
        self._lock = asyncio.Lock()
        self._last: tuple[float, Report] | None = None

    async def report(self) -> Report:
        async with self._lock:  # concurrent callers wait for one round and share it
            if self._last is not None and time.monotonic() - self._last[0] < CACHE_SECONDS:
                return self._last[1]
            names = list(self._probes)
            results = await asyncio.gather(*(self._run(name) for name in names))
            checks = {name: state for name, (state, _) in zip(names, results, strict=True)}
            facts = {
                name: fact
                for name, (_, fact) in zip(names, results, strict=True)
                if fact is not None
            }
            ready = all(v in ("ok", "off") or k in self._optional for k, v in checks.items())
            report = Report(ready, checks, facts)
            self._last = (time.monotonic(), report)
            for name, state in checks.items():
                if state != "off":
                    metrics.DEPENDENCY_UP.labels(dependency=name).set(state == "ok")
            return report

    async def _run(self, name: str) -> tuple[str, object]:
        probe = self._probes[name]
        if probe is None:
            return "off", None
        running = self._pool.submit(probe)
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        try:
            fact = await asyncio.wait_for(asyncio.wrap_future(running), PROBE_SECONDS)
        except TimeoutError:
            log.warning("readiness.timeout", check=name, seconds=PROBE_SECONDS)
            return "failing", None
        except Exception as exc:
            # The reason goes to the log; the readiness body only says which part failed.
            log.warning("readiness.failing", check=name, error=type(exc).__name__)
            return "failing", None
        return "ok", fact

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        # A probe past its deadline may still hold a database connection: give it one more
        # deadline to hand it back before the engine is disposed (else it is dropped unclosed);
        # a dependency that stays hung still cannot hold shutdown up for longer.
        wait(list(self._running), timeout=PROBE_SECONDS)


def for_runtime(runtime: Runtime) -> Readiness:
    """The probes of a running filegate; the scanner counts only where it is required."""
    probes: dict[str, Probe | None] = {
        "database": runtime.db.ping,
        "storage": runtime.storage.check,
        "queue": runtime.queue.check,
        "scanner": _scanner_probe(runtime),
    }
    optional = frozenset() if runtime.settings.scanner_required else frozenset({"scanner"})
    return Readiness(probes, optional)


def _scanner_probe(runtime: Runtime) -> Probe | None:
    scanner = scanner_config(runtime.settings)
    if scanner is None:
        return None
    quick = antivirus.ScannerConfig(scanner.url, min(scanner.timeout, PROBE_SECONDS))

    def probe() -> datetime | None:
        """PING, then VERSION for the signatures' date (kept as the scanner's fact)."""
        if not antivirus.ping(quick):
            raise ConnectionError("clamd did not answer PING")
        published = antivirus.signatures_date(quick)
        if published is not None:
            age = (datetime.now(UTC) - published).total_seconds()
            metrics.SCANNER_SIGNATURES_AGE.labels(scanner="clamd").set(max(age, 0.0))
        return published

    return probe
