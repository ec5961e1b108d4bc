"""Prometheus metrics, one place. Every rejection and job outcome is counted with its reason."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
JOB_FAILURES = Counter("filegate_job_failures_total", "Jobs that raised, by job.", ["job"])
JOB_RUNS = Counter(
    "filegate_job_runs_total", "Finished jobs by job and outcome.", ["job", "outcome"]
)
WEBHOOK_DELIVERIES = Counter(
    "filegate_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, http_5xx, timeout, target_refused, ...).",
    ["outcome"],
)
JOB_SECONDS = Histogram(
    "filegate_job_seconds",
    "Wall time of one job run, by job.",
    ["job"],
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
