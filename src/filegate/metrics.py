"""Prometheus metrics, one place. Every rejection and job outcome is counted with its reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

UPLOADS = Counter(
    "filegate_uploads_total",
    "Upload requests by outcome (accepted, or the error code that refused them).",
    ["outcome"],
)
UPLOAD_BYTES = Counter(
    "filegate_upload_bytes_total",
    "Bytes accepted into quarantine, by channel (direct, tus, import).",
    ["channel"],
)
INSPECTIONS = Counter(
    "filegate_inspections_total",
    "Finished inspections by verdict and profile.",
    ["verdict", "profile"],
)
REJECTIONS = Counter(
    "filegate_rejection_findings_total",
    "Findings that rejected a file, by code and profile.",
    ["code", "profile"],
)
TIME_TO_VERDICT = Histogram(
    "filegate_time_to_verdict_seconds",
    "From an upload's last byte (the file's record) to its verdict, by profile: queueing, "
    "retries and inspection together, what a client waiting for a webhook feels.",
    ["profile"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
BUILD_INFO = Gauge(
    "filegate_build_info",
    "Always 1; the labels say which version and release this process runs.",
    ["version", "release"],
)
# Job metrics label the job kind `kind`: Prometheus owns `job` (the scrape job) and would
# rename ours to `exported_job`.
JOB_FAILURES = Counter("filegate_job_failures_total", "Jobs that raised, by job kind.", ["kind"])
JOB_RUNS = Counter(
    "filegate_job_runs_total", "Finished jobs by job kind and outcome.", ["kind", "outcome"]
)
WEBHOOK_DELIVERIES = Counter(
    "filegate_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, http_5xx, timeout, target_refused, ...).",
    ["outcome"],
)
JOB_SECONDS = Histogram(
    "filegate_job_seconds",
    "Wall time of one job run, by job kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
INSPECTION_SECONDS = Histogram(
    "filegate_inspection_seconds",
    "Wall time of one inspection job.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REQUEST_SECONDS = Histogram(
    "filegate_http_request_seconds",
    "HTTP request duration by route template, method and status.",
    ["route", "method", "status"],
)
RATE_LIMITED = Counter(
    "filegate_rate_limited_total",
    "Requests refused with 429, by limit (key: requests per second, uploads: per minute).",
    ["limit"],
)
RATE_LIMIT_ERRORS = Counter(
    "filegate_rate_limit_errors_total",
    "Times the rate limiter could not reach its store and let requests through unchecked.",
)
UPLOADS_BUSY = Counter(
    "filegate_uploads_busy_total",
    "Uploads refused with 503 because this process already receives max_concurrent_uploads.",
)
DEPENDENCY_UP = Gauge(
    "filegate_dependency_up",
    "1 when this process's last readiness probe reached the dependency (database, storage, "
    "queue, scanner), 0 when it did not; a load balancer polling /readyz keeps it fresh.",
    ["dependency"],
)
SCANNER_SIGNATURES_AGE = Gauge(
    "filegate_scanner_signatures_age_seconds",
    "Age of the virus signatures clamd has loaded, from its VERSION answer at the last "
    "readiness probe, by scanner (absent: no scanner, or only local signatures).",
    ["scanner"],
)


class StorageCollector:
    """Free space where the storage lives, read at scrape time (local storage only)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def collect(self) -> Iterator[Metric]:
        if self.path is None:
            return
        try:
            stats = os.statvfs(self.path)
        except OSError:
            return  # not created yet, or gone: /readyz reports the storage
        free = stats.f_bavail * stats.f_frsize
        size = stats.f_blocks * stats.f_frsize
        yield GaugeMetricFamily(
            "filegate_storage_free_bytes", "Bytes free for storage (unprivileged).", value=free
        )
        yield GaugeMetricFamily(
            "filegate_storage_free_ratio",
            "Share of the storage filesystem that is free.",
            value=free / size if size else 0.0,
        )


# Registered once per process; the composition root points it at the storage directory.
STORAGE = StorageCollector()
REGISTRY.register(STORAGE)
