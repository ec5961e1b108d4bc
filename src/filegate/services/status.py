"""The status page's four answers: is it up, is it slow, are jobs failing, did the deploy
change anything. Each is a verdict (ok / warn / bad), one sentence, and the numbers behind it.

Live checks (the dependencies) come from this process's readiness probes; everything else from
the database (per-minute signals by release, the processes table, the job ledger, webhook
events), so every API process gives the same page, and a restart forgets nothing.
The thresholds are here, named, and explained in docs/operations.md ("Status page").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from filegate import signals
from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Jobs, Processes, Signals, WebhookEvents
from filegate.domain import JobKind, utcnow

OK, WARN, BAD = "ok", "warn", "bad"
_RANK = {OK: 0, WARN: 1, BAD: 2}

# up: a process is a live worker when its heartbeat is this recent (they beat every 5 s).
WORKER_SEEN_SECONDS = 60.0
# up: ClamAV publishes signatures several times a day; three days old means updates stopped.
SIGNATURES_STALE = timedelta(days=3)

# slow: the last 5 minutes against the last 24 hours, on at least this many samples.
RECENT = timedelta(minutes=5)
BASELINE = timedelta(hours=24)
MIN_SLOW_SAMPLES = 5
# p95 this many times the baseline's, and at least this many seconds more.
SLOW_WARN = (2.0, 0.5)
SLOW_BAD = (4.0, 2.0)

# jobs: the window for failure rates and given-up jobs.
JOBS_WINDOW = timedelta(hours=1)
GIVEN_UP_WINDOW = timedelta(hours=24)
# A job kind failing at least this share of its runs, this many times, is bad.
FAILING_SHARE, FAILING_MIN = 0.5, 5
# The oldest due job waiting this long: warn, bad.
WAITING_WARN, WAITING_BAD = 60.0, 900.0

# The page's small chart: requests and errors per minute.
TRAFFIC_WINDOW = timedelta(hours=1)

# deploy: the previous release's last hour before the current one started.
PREVIOUS_WINDOW = timedelta(hours=1)
# Too little traffic to tell below these, on either side.
MIN_DEPLOY_REQUESTS = 20
MIN_DEPLOY_SAMPLES = 10
MIN_DEPLOY_VERDICTS = 20
# A rate change counts when it is this many standard errors away and this large (points).
Z_BEYOND_NOISE = 3.0
ERROR_RATE_MIN_RISE = 0.01
REJECTION_RATE_MIN_RISE = 0.05
# An error rate this high after a significant rise is bad, not warn.
ERROR_RATE_BAD = 0.05
# A p95 this many times the previous one and this many seconds more: warn, bad.
# Only when the bulk moved too: the new median above the old p95. A burst queueing behind
# itself stretches the tail of one release and not the other; that is traffic, not a deploy.
DEPLOY_SLOWER_WARN = (2.0, 0.5)
DEPLOY_SLOWER_BAD = (4.0, 2.0)

# (signal, key in the JSON, name in a sentence)
LATENCIES = (
    (signals.UPLOAD_SECONDS, "upload_acceptance", "upload acceptance"),
    (signals.FIRST_BYTE_SECONDS, "download_first_byte", "download first byte"),
    (signals.VERDICT_SECONDS, "time_to_verdict", "time to verdict"),
)
DEPENDENCY_NAMES = {
    "database": "the database",
    "storage": "the storage",
    "queue": "the queue broker",
    "scanner": "the virus scanner",
}


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "summary": self.summary, **self.numbers}


@dataclass(frozen=True, slots=True)
class Window:
    """Signal totals over a span of minutes: (signal, label) -> (count, total)."""

    rows: Mapping[tuple[str, str], tuple[int, float]]

    def count(self, signal: str, label: str | None = None) -> int:
        return sum(
            n for (s, lab), (n, _) in self.rows.items() if s == signal and label in (None, lab)
        )

    def by_label(self, signal: str) -> dict[str, int]:
        return {lab: n for (s, lab), (n, _) in self.rows.items() if s == signal and n}

    def quantile(self, signal: str, q: float) -> float | None:
        """The q-quantile of a histogram signal, interpolated within its bucket (as
        Prometheus's histogram_quantile does); None without samples."""
        buckets = sorted(
            (signals.bucket_bound(lab), n) for (s, lab), (n, _) in self.rows.items() if s == signal
        )
        total = sum(n for _, n in buckets)
        if not total:
            return None
        rank, seen = q * total, 0
        for bound, n in buckets:
            if n and seen + n >= rank:
                lower = _lower_bound(bound)
                if math.isinf(bound):
                    return lower  # past the last finite bound: that bound is all we know
                return lower + (bound - lower) * (rank - seen) / n
            seen += n
        return None


def _lower_bound(bound: float) -> float:
    """The bucket boundary below ``bound`` (0 for the first bucket)."""
    index = signals.BUCKETS.index(bound) if bound in signals.BUCKETS else 0
    return signals.BUCKETS[index - 1] if index > 0 else 0.0


def _summary_of(window: Window, signal: str) -> dict[str, Any]:
    p50, p95 = window.quantile(signal, 0.5), window.quantile(signal, 0.95)
    return {
        "samples": window.count(signal),
        "p50_seconds": _round(p50),
        "p95_seconds": _round(p95),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def worst(*verdicts: str) -> str:
    """The worst of ``verdicts`` (ok without any)."""
    return max(verdicts, key=_RANK.__getitem__, default=OK)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _ago(since: datetime, now: datetime) -> str:
    seconds = max((now - since).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


# --- up -------------------------------------------------------------------------------------


def assess_up(
    checks: Mapping[str, str],
    *,
    scanner_required: bool,
    signatures_at: datetime | None,
    workers_seen: int,
    api_seen: int,
    now: datetime,
) -> Answer:
    failing = [name for name, state in checks.items() if state == "failing"]
    required_failing = [n for n in failing if n != "scanner" or scanner_required]
    numbers: dict[str, Any] = {
        "checks": dict(checks),
        "scanner_required": scanner_required,
        "signatures_at": signatures_at.isoformat() if signatures_at else None,
        "signatures_age_hours": (
            round((now - signatures_at).total_seconds() / 3600, 1) if signatures_at else None
        ),
        "workers_seen": workers_seen,
        "api_processes_seen": api_seen,
    }
    bad, warn = [], []
    if required_failing:
        names = _and([DEPENDENCY_NAMES.get(n, n) for n in required_failing])
        verb = "is" if len(required_failing) == 1 else "are"
        bad.append(f"{names} {verb} unreachable")
    if workers_seen == 0:
        bad.append(
            f"no worker has been seen in the last {WORKER_SEEN_SECONDS:.0f} s, so uploads "
            "wait in quarantine"
        )
    if "scanner" in failing and not scanner_required:
        warn.append("the virus scanner does not answer (not required: files wait or go unscanned)")
    if checks.get("scanner") == "off":
        warn.append("no virus scanner is configured: files are promoted without a scan")
    if signatures_at is not None and now - signatures_at > SIGNATURES_STALE:
        warn.append(f"the virus signatures are {_ago(signatures_at, now).removesuffix(' ago')} old")
    if bad:
        return Answer(BAD, _sentence(bad + warn), numbers)
    if warn:
        return Answer(WARN, _sentence(["Up, but " + warn[0], *warn[1:]]), numbers)
    return Answer(
        OK,
        f"Up: every dependency answers; {_count(workers_seen, 'worker')} seen in the last minute.",
        numbers,
    )


def _sentence(parts: list[str], tail: str = "") -> str:
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + tail + "."


# --- slow -----------------------------------------------------------------------------------


def assess_slow(recent: Window, baseline: Window) -> Answer:
    """The last 5 minutes against the 24 hours before them."""
    numbers: dict[str, Any] = {}
    findings: list[tuple[str, str]] = []
    compared: list[str] = []
    for signal, key, name in LATENCIES:
        now_, usual = _summary_of(recent, signal), _summary_of(baseline, signal)
        numbers[key] = {"last_5_minutes": now_, "previous_24_hours": usual}
        if min(now_["samples"], usual["samples"]) < MIN_SLOW_SAMPLES:
            continue
        compared.append(name)
        verdict = _slower(
            now_["p95_seconds"], usual["p95_seconds"], now_["samples"], SLOW_WARN, SLOW_BAD
        )
        if verdict != OK:
            findings.append(
                (
                    verdict,
                    f"{name} is slow: p95 {_short(now_['p95_seconds'])} in the last 5 minutes "
                    f"against {_short(usual['p95_seconds'])} over the 24 hours before",
                )
            )
    if findings:
        return Answer(
            worst(*(v for v, _ in findings)), _sentence([t for _, t in findings]), numbers
        )
    if not any(recent.count(signal) for signal, _, _ in LATENCIES):
        return Answer(OK, "No uploads, downloads or verdicts in the last 5 minutes.", numbers)
    if not compared:
        return Answer(
            OK,
            "Too little traffic to compare with the 24 hours before "
            f"({MIN_SLOW_SAMPLES} samples needed on each side).",
            numbers,
        )
    verb = "is" if len(compared) == 1 else "are"
    return Answer(
        OK, _sentence([f"{_and(compared)} {verb} as fast as over the 24 hours before"]), numbers
    )


def _short(seconds: float | None) -> str:
    """A bucket estimate, with no more digits than it deserves."""
    return "-" if seconds is None else f"{seconds:.2g} s"


def _slower(
    current: float | None,
    before: float | None,
    samples: int,
    warn: tuple[float, float],
    bad: tuple[float, float],
) -> str:
    if current is None or before is None or samples < MIN_SLOW_SAMPLES:
        return OK
    for verdict, (ratio, seconds) in ((BAD, bad), (WARN, warn)):
        if current >= before * ratio and current - before >= seconds:
            return verdict
    return OK


# --- jobs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What the jobs verdict reads, gathered from the ledger, signals and webhook events."""

    runs: Mapping[str, int]
    failures: Mapping[str, int]
    oldest_waiting: Mapping[str, float]
    given_up: list[dict[str, Any]]
    failing_endpoints: list[dict[str, Any]]


def assess_jobs(facts: JobFacts) -> Answer:
    per_job = {
        kind.value: {
            "runs_last_hour": facts.runs.get(kind.value, 0),
            "failures_last_hour": facts.failures.get(kind.value, 0),
            "failure_rate": _round(
                facts.failures.get(kind.value, 0) / facts.runs[kind.value]
                if facts.runs.get(kind.value)
                else None
            ),
            "oldest_waiting_seconds": _round(facts.oldest_waiting.get(kind.value), 1),
        }
        for kind in JobKind
    }
    numbers = {
        "per_job": per_job,
        "given_up": facts.given_up,
        "failing_webhook_endpoints": facts.failing_endpoints,
    }
    bad, warn = [], []
    for kind in JobKind:
        # Deliveries fail when a receiver is down: the receiver's problem, reported below.
        if kind is JobKind.DELIVER:
            continue
        failures, runs = facts.failures.get(kind.value, 0), facts.runs.get(kind.value, 0)
        if failures >= FAILING_MIN and failures >= FAILING_SHARE * runs:
            bad.append(f"{kind} jobs are failing ({failures} of {runs} runs in the last hour)")
        elif failures:
            warn.append(f"{_count(failures, f'{kind} job run')} failed in the last hour")
    oldest = max(facts.oldest_waiting.items(), key=lambda item: item[1], default=None)
    if oldest is not None and oldest[1] >= WAITING_WARN:
        text = f"the oldest waiting job ({oldest[0]}) has waited {oldest[1]:.0f} s"
        (bad if oldest[1] >= WAITING_BAD else warn).append(text)
    if facts.given_up:
        n = len(facts.given_up)
        warn.append(f"{_count(n, 'job')} gave up in the last 24 hours")
    if facts.failing_endpoints:
        # Hosts only of the viewer's own endpoints: another tenant's receivers are its business.
        named = [e["host"] for e in facts.failing_endpoints if e.get("host")][:3]
        others = len(facts.failing_endpoints) - len(named)
        if others:
            named.append(_count(others, "other endpoint" if named else "endpoint"))
        warn.append(f"webhook deliveries keep failing to {_and(named)}")
    if bad:
        return Answer(BAD, _sentence(bad + warn), numbers)
    if warn:
        return Answer(WARN, _sentence(warn), numbers)
    total = sum(facts.runs.values())
    return Answer(
        OK, f"No job failures: {total} runs in the last hour, none waiting long.", numbers
    )


# --- deploy ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deploy:
    """The release this process runs, since when, and the one before it."""

    current: str
    since: datetime
    previous: str | None


def find_deploy(starts: list[tuple[datetime, str]], current: str, now: datetime) -> Deploy:
    """The current release's start is its first process start after the last start of any
    other release (a release deployed, replaced and deployed again starts anew)."""
    others = [(started, release) for started, release in starts if release != current]
    last_other = max(others, default=None)
    mine = [s for s, r in starts if r == current and (last_other is None or s > last_other[0])]
    return Deploy(current, min(mine, default=now), last_other[1] if last_other else None)


def assess_deploy(deploy: Deploy, current: Window, previous: Window, now: datetime) -> Answer:
    numbers: dict[str, Any] = {
        "release": deploy.current,
        "since": deploy.since.isoformat(),
        "previous_release": deploy.previous,
        "current": _deploy_numbers(current),
        "previous": _deploy_numbers(previous) if deploy.previous else None,
    }
    started = f"{deploy.current} started {_ago(deploy.since, now)}"
    if deploy.previous is None:
        return Answer(
            OK, f"{started}; it is the first release recorded, nothing to compare with.", numbers
        )
    changes: list[tuple[str, str]] = []
    compared: list[str] = []
    requests = (current.count(signals.REQUESTS), previous.count(signals.REQUESTS))
    if min(requests) >= MIN_DEPLOY_REQUESTS:
        compared.append("error rate")
        errors = (current.count(signals.REQUESTS, "5xx"), previous.count(signals.REQUESTS, "5xx"))
        change = _rate_rise(errors[0], requests[0], errors[1], requests[1], ERROR_RATE_MIN_RISE)
        if change:
            now_rate = errors[0] / requests[0]
            verdict = BAD if now_rate >= ERROR_RATE_BAD else WARN
            changes.append(
                (
                    verdict,
                    f"the error rate rose from {change[1]:.1%} to {change[0]:.1%} "
                    f"({errors[0]} of {requests[0]} requests failed)",
                )
            )
    for signal, _, name in LATENCIES:
        samples = (current.count(signal), previous.count(signal))
        if min(samples) < MIN_DEPLOY_SAMPLES:
            continue
        compared.append(name)
        now_p95, before_p95 = current.quantile(signal, 0.95), previous.quantile(signal, 0.95)
        now_p50 = current.quantile(signal, 0.5)
        verdict = _slower(now_p95, before_p95, samples[0], DEPLOY_SLOWER_WARN, DEPLOY_SLOWER_BAD)
        bulk_moved = now_p50 is not None and before_p95 is not None and now_p50 > before_p95
        if verdict != OK and bulk_moved and now_p95 is not None and before_p95 is not None:
            changes.append(
                (verdict, f"{name} p95 rose from {_short(before_p95)} to {_short(now_p95)}")
            )
    verdicts = (current.count(signals.VERDICTS), previous.count(signals.VERDICTS))
    if min(verdicts) >= MIN_DEPLOY_VERDICTS:
        compared.append("rejections")
        now_codes, before_codes = (
            current.by_label(signals.REJECTIONS),
            previous.by_label(signals.REJECTIONS),
        )
        for code in sorted(set(now_codes) | set(before_codes)):
            change = _rate_rise(
                now_codes.get(code, 0),
                verdicts[0],
                before_codes.get(code, 0),
                verdicts[1],
                REJECTION_RATE_MIN_RISE,
            )
            if change:
                changes.append(
                    (
                        WARN,
                        f"{code} rejections rose from {change[1]:.1%} to {change[0]:.1%} of files",
                    )
                )
    numbers["compared"] = compared
    against = f"against {deploy.previous}'s last hour"
    if changes:
        texts = [f"since {started}, {changes[0][1]}", *(t for _, t in changes[1:])]
        return Answer(worst(*(v for v, _ in changes)), _sentence(texts, f" ({against})"), numbers)
    if not compared:
        return Answer(
            OK,
            f"Too little traffic to tell: {requests[0]} requests since {started} and "
            f"{requests[1]} in {deploy.previous}'s last hour ({MIN_DEPLOY_REQUESTS} needed on "
            "each side).",
            numbers,
        )
    return Answer(
        OK, f"No change beyond noise since {started} ({_and(compared)} {against}).", numbers
    )


def _deploy_numbers(window: Window) -> dict[str, Any]:
    requests = window.count(signals.REQUESTS)
    verdicts = window.count(signals.VERDICTS)
    return {
        "requests": requests,
        "errors": window.count(signals.REQUESTS, "5xx"),
        "error_rate": _round(
            window.count(signals.REQUESTS, "5xx") / requests if requests else None, 4
        ),
        "upload_p95_seconds": _round(window.quantile(signals.UPLOAD_SECONDS, 0.95)),
        "first_byte_p95_seconds": _round(window.quantile(signals.FIRST_BYTE_SECONDS, 0.95)),
        "verdict_p95_seconds": _round(window.quantile(signals.VERDICT_SECONDS, 0.95)),
        "verdicts": verdicts,
        "rejections": window.by_label(signals.REJECTIONS),
    }


def _rate_rise(
    hits: int, total: int, hits_before: int, total_before: int, min_rise: float
) -> tuple[float, float] | None:
    """(now, before) when the share rose beyond noise: a two-proportion z-test, and at least
    ``min_rise`` in absolute terms; None otherwise."""
    now, before = hits / total, hits_before / total_before
    if now - before < min_rise:
        return None
    pooled = (hits + hits_before) / (total + total_before)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total + 1 / total_before))
    if spread == 0 or (now - before) / spread < Z_BEYOND_NOISE:
        return None
    return now, before


# --- gathering ------------------------------------------------------------------------------


def status(
    db: Database,
    settings: Settings,
    release: str,
    checks: Mapping[str, str],
    *,
    signatures_at: datetime | None,
    viewer: str | None,
) -> dict[str, Any]:
    """The whole page as JSON: the four answers, the releases and processes behind them.

    ``viewer`` is the tenant of the admin key asking, or None for an anonymous reader of a
    public page. A webhook receiver's host is shown only to its own tenant; an anonymous
    reader sees no hosts, process names, job subjects or errors, only counts and verdicts.
    """
    now = utcnow()
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    with db.session() as session:
        store, processes = Signals(session), Processes(session)
        recent = Window(store.totals(until - RECENT, until))
        baseline = Window(store.totals(until - RECENT - BASELINE, until - RECENT))
        jobs_window = Window(store.totals(until - JOBS_WINDOW, until))
        seen = processes.seen_since(now - timedelta(seconds=WORKER_SEEN_SECONDS))
        deploy = find_deploy(processes.starts(), release, now)
        current = Window(
            store.totals(deploy.since.replace(second=0, microsecond=0), until, deploy.current)
        )
        previous = Window(
            store.totals(deploy.since - PREVIOUS_WINDOW, deploy.since, deploy.previous)
            if deploy.previous
            else {}
        )
        releases = processes.releases()
        traffic = store.per_minute(signals.REQUESTS, until - TRAFFIC_WINDOW, until)
        ledger = Jobs(session)
        oldest = {
            kind: (now - when).total_seconds() for kind, when in ledger.oldest_waiting(now).items()
        }
        gave_up = [
            job
            for job in ledger.recent_failures(20)
            if job.finished_at and now - job.finished_at <= GIVEN_UP_WINDOW
        ]
        endpoints = WebhookEvents(session).failing_endpoints(now - GIVEN_UP_WINDOW, 10)
    facts = JobFacts(
        runs=jobs_window.by_label(signals.JOB_RUNS),
        failures=jobs_window.by_label(signals.JOB_FAILURES),
        oldest_waiting=oldest,
        given_up=[
            {
                "job": job.kind.value,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
                **(
                    {
                        "job_id": job.id,
                        "subject": job.subject,
                        "attempts": job.attempts,
                        "error": job.error,
                        "log_query": log_query(settings, job.id),
                    }
                    if viewer is not None
                    else {}
                ),
            }
            for job in gave_up
        ],
        failing_endpoints=[
            {
                "failing_events": e.failing_events,
                "given_up": e.given_up,
                # The host only: a receiver's URL may carry a token in its path or query.
                "host": (urlsplit(e.url).hostname or "?") if e.tenant == viewer else None,
                **(
                    {"endpoint_id": e.endpoint_id, "last_error": e.last_error}
                    if e.tenant == viewer
                    else {}
                ),
            }
            for e in endpoints
        ],
    )
    workers = sum(1 for p in seen if "worker" in p.role)
    api = sum(1 for p in seen if p.role.startswith("api"))
    answers = {
        "up": assess_up(
            checks,
            scanner_required=settings.scanner_required,
            signatures_at=signatures_at,
            workers_seen=workers,
            api_seen=api,
            now=now,
        ),
        "slow": assess_slow(recent, baseline),
        "jobs": assess_jobs(facts),
        "deploy": assess_deploy(deploy, current, previous, now),
    }
    return {
        **{name: answer.as_json() for name, answer in answers.items()},
        "release": release,
        "generated_at": now.isoformat(),
        "releases": [
            {
                "release": r.release,
                "first_started_at": r.first_started_at.isoformat(),
                "last_started_at": r.last_started_at.isoformat(),
                "last_seen_at": r.last_seen_at.isoformat(),
            }
            for r in releases[-10:]
        ],
        "traffic": _traffic(traffic, until),
        "processes": [
            {
                "role": p.role,
                "release": p.release,
                "started_at": p.started_at.isoformat(),
                "last_seen_at": p.last_seen_at.isoformat(),
                **({"host": p.hostname, "pid": p.pid} if viewer is not None else {}),
            }
            for p in seen
        ],
    }


def _traffic(counts: Mapping[tuple[datetime, str], int], until: datetime) -> list[dict[str, Any]]:
    """Requests and server errors per minute, every minute of the window (zeros included)."""
    minutes = int(TRAFFIC_WINDOW / timedelta(minutes=1))
    rows = []
    for back in range(minutes, 0, -1):
        minute = until - timedelta(minutes=back)
        per_class = {label: n for (m, label), n in counts.items() if m == minute}
        rows.append(
            {
                "minute": minute.isoformat(),
                "requests": sum(per_class.values()),
                "errors": per_class.get("5xx", 0),
            }
        )
    return rows


def log_query(settings: Settings, job_id: str) -> dict[str, str]:
    """The query that finds a job's log lines, and a link when a log search is configured."""
    query = f'job_id="{job_id}"'
    out = {"query": query}
    if settings.log_search_url:
        out["url"] = settings.log_search_url.replace("{query}", quote(query, safe=""))
    return out
