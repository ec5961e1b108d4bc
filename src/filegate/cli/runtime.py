"""The composition root: the one place that builds the pieces and wires them together."""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

import structlog

from filegate.config import Settings
from filegate.db.engine import Database

# Each command imports what only it needs (the inspectors, the queue engine): `filegate keys
# create` should not pay a second of imports for FastAPI and Magika.
if TYPE_CHECKING:
    from filegate.jobs.worker import Worker
    from filegate.services.inspection import RunJob
    from filegate.services.runtime import Runtime
    from filegate.storage.base import Storage

log = structlog.get_logger("filegate.cli")


def build_runtime(settings: Settings, run_job: RunJob | None = None) -> tuple[Runtime, Worker]:
    """Wire the pieces; ``run_job`` defaults to a sandboxed inspector process."""
    from filegate.inspect.sandbox import Sandbox, SandboxLimits
    from filegate.jobs.queue import HueyQueue, make_huey
    from filegate.jobs.worker import build_worker
    from filegate.services.inspection import Inspector
    from filegate.services.runtime import Runtime, scanner_config

    warm_up = None
    db = Database(settings.resolved_database_url)
    storage = make_storage(settings)
    if run_job is None:
        sandbox = Sandbox(
            SandboxLimits(
                memory_bytes=int(settings.inspection_memory_bytes),
                cpu_seconds=settings.inspection_cpu_seconds,
                wall_seconds=settings.inspection_timeout_seconds,
            ),
            processes=settings.inspection_processes,
        )
        run_job, warm_up = sandbox.run, sandbox.start
    inspector = Inspector(
        run=run_job,
        policy_for=settings.profile,
        scanner=scanner_config(settings),
        scanner_required=settings.scanner_required,
        warm_up=warm_up,
    )
    queue = HueyQueue(make_huey(settings), settings)
    worker = build_worker(settings, db, storage, queue, inspector)
    return Runtime(settings=settings, db=db, storage=storage, queue=queue), worker


def make_storage(settings: Settings) -> Storage:
    """Local disk under storage_dir, or the S3 bucket of storage_url."""
    if settings.storage_url:
        from filegate.storage.s3 import S3Storage, make_client, parse_storage_url

        bucket, prefix = parse_storage_url(settings.storage_url)
        client = make_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            addressing_style=settings.s3_addressing_style,
        )
        map_large_buffers()
        return S3Storage(client, bucket, prefix)
    from filegate.storage.local import LocalStorage

    return LocalStorage(settings.resolved_storage_dir)


# glibc's mallopt parameter, and the size from which buffers are mapped (measured: see below).
M_MMAP_THRESHOLD = -3
MAP_FROM_BYTES = 1024 * 1024


def map_large_buffers() -> None:
    """Have glibc map every buffer of ``MAP_FROM_BYTES`` or more and unmap it when freed.

    S3 parts (8 MiB) are filled on one thread and freed on another once S3 took them. glibc's
    default raises its mapping threshold after the first such buffer is freed, then serves the
    next ones from per-thread arenas it seldom gives back: peak RSS grew 40 MB from a 100 MiB
    to a 4 GiB upload. With a fixed threshold: +1.4 MB, and 50 MB less at every size
    (docs/benchmarks.md). Elsewhere (musl, macOS) there is nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MAP_FROM_BYTES)


def announce_scanner(runtime: Runtime) -> None:
    status = runtime.scanner_status()
    if status == "off":
        log.warning(
            "scanner.off",
            detail="No clamd_url is set: files are promoted WITHOUT a virus scan. "
            "Set FILEGATE_CLAMD_URL (and FILEGATE_SCANNER_REQUIRED=true) in production.",
        )
    elif status == "failing":
        log.error("scanner.unreachable", required=runtime.settings.scanner_required)


def sweep_temp(runtime: Runtime) -> None:
    """Temp files of uploads a killed process left behind; the grace period spares the ones
    that other processes on the same storage are still writing."""
    removed = runtime.storage.cleanup_stale_temp(runtime.settings.reconcile_grace_seconds)
    if removed:
        log.warning("storage.stale_temp_removed", count=removed)


def expose_metrics(settings: Settings, *, db: Database | None = None, port: int = 0) -> None:
    """What this process tells Prometheus about itself: its release, and with ``db`` (API
    processes only) the ledger's gauges; with ``port``, a /metrics server of its own (workers,
    which have no HTTP API)."""
    from prometheus_client import start_http_server

    from filegate import __version__, metrics
    from filegate.jobs.status import LEDGER
    from filegate.release import current_release

    metrics.BUILD_INFO.labels(version=__version__, release=current_release(settings.release)).set(1)
    metrics.STORAGE.path = None if settings.storage_url else settings.resolved_storage_dir
    if db is not None:
        LEDGER.db = db
    if port:
        start_http_server(port, addr=settings.host)
        log.info("metrics.serving", port=port)
