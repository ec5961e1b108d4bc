"""The queries that run per request or per job, built by the same functions the repositories
use, with values to plan them by. Their plans are checked at scale (tests, docs/database.md)
and on a copy of the real database (`filegate db rehearse`): none may read a large table in
full."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Executable

from filegate.db.models import FileRow, ImportRow, JobRow, UploadRow, WebhookEventRow
from filegate.db.repository.files import file_query, page_query, stored_query
from filegate.db.repository.imports import journal_query
from filegate.db.repository.jobs import (
    claim_statement,
    oldest_waiting_query,
    recent_failures_query,
    stalled_query,
)
from filegate.db.repository.keys import active_key_query
from filegate.db.repository.signals import per_minute_query, totals_query
from filegate.db.repository.upload_tokens import active_token_query
from filegate.db.repository.uploads import in_flight_query, upload_query
from filegate.db.repository.webhooks import event_query, failing_endpoints_query
from filegate.domain import FileState, JobKind, utcnow

# The values the callers pass, as of this writing (db/ may not import services/ or web/):
# web/files.py's default page, the runner's default lease and rescan batch, services/status.py's
# windows and list lengths.
PAGE = 50
LEASE = timedelta(seconds=300)
RESCAN_BATCH = 500
STATUS_BASELINE = timedelta(hours=24)
STATUS_TRAFFIC = timedelta(hours=1)
STATUS_FAILURES = 20
STATUS_ENDPOINTS = 10


@dataclass(frozen=True, slots=True)
class Sample:
    """Values to plan with: the newest rows' tenant and ids when the database has rows, so a
    planner that looks at values sees a tenant that has files."""

    now: datetime
    tenant: str = "tenant-0"
    file_id: str = "0" * 26
    upload_id: str = "0" * 26
    job_kind: JobKind = JobKind.INSPECT
    job_subject: str = "0" * 26
    event_id: str = "0" * 26
    key_hash: str = "0" * 64
    import_tenant: str = "tenant-0"
    source: str = "/import/0"
    sha256: str = "0" * 64

    @classmethod
    def of(cls, connection: Connection) -> Sample:
        sample = cls(now=utcnow())
        newest = connection.execute(_newest(FileRow.id, FileRow.tenant)).first()
        if newest:
            sample = replace(sample, file_id=newest.id, tenant=newest.tenant)
        upload = connection.execute(_newest(UploadRow.id)).first()
        if upload:
            sample = replace(sample, upload_id=upload.id)
        job = connection.execute(_newest(JobRow.kind, JobRow.subject)).first()
        if job:
            sample = replace(sample, job_kind=JobKind(job.kind), job_subject=job.subject)
        event = connection.execute(_newest(WebhookEventRow.id)).first()
        if event:
            sample = replace(sample, event_id=event.id)
        journal = connection.execute(
            _newest(ImportRow.tenant, ImportRow.source, ImportRow.sha256)
        ).first()
        if journal:
            sample = replace(
                sample, import_tenant=journal.tenant, source=journal.source, sha256=journal.sha256
            )
        return sample


def _newest(*columns: InstrumentedAttribute[Any]) -> Select[*tuple[Any, ...]]:
    """The newest row's ``columns`` (ids are ULIDs: the greatest is the newest)."""
    table = columns[0].class_
    return select(*columns).order_by(table.id.desc()).limit(1)


@dataclass(frozen=True, slots=True)
class HotQuery:
    name: str
    # When it runs, for the reader of a plan.
    runs: str
    build: Callable[[Sample], Executable]


HOT_QUERIES: tuple[HotQuery, ...] = (
    HotQuery(
        "file_by_id",
        "per request: GET /v1/files/{id} and its content; per inspect and promote job",
        lambda s: file_query(s.file_id, s.tenant),
    ),
    HotQuery(
        "files_page",
        "per request: GET /v1/files, the tenant's newest first after a cursor",
        lambda s: page_query(s.tenant, state=None, before=s.file_id, limit=PAGE + 1),
    ),
    HotQuery(
        "files_page_in_state",
        "per request: GET /v1/files?state=rejected",
        lambda s: page_query(s.tenant, state=FileState.REJECTED, before=None, limit=PAGE + 1),
    ),
    HotQuery(
        "tenant_usage",
        "per upload when [quotas] are set; GET /v1/usage",
        lambda s: stored_query(s.tenant),
    ),
    HotQuery(
        "api_key",
        "per authenticated request",
        lambda s: active_key_query(s.key_hash),
    ),
    HotQuery(
        "upload_token",
        "per request with an upload token (with the key that minted it)",
        lambda s: active_token_query(s.key_hash, s.now),
    ),
    HotQuery(
        "upload_by_id",
        "per tus request (HEAD, PATCH, DELETE)",
        lambda s: upload_query(s.upload_id, s.tenant),
    ),
    HotQuery(
        "uploads_in_flight",
        "per tus creation when [quotas] are set; GET /v1/usage",
        lambda s: in_flight_query(s.tenant, s.now),
    ),
    HotQuery(
        "job_claim",
        "per job run (UPDATE ... RETURNING)",
        lambda s: claim_statement(s.job_kind, s.job_subject, LEASE, s.now),
    ),
    HotQuery(
        "jobs_stalled",
        "per rescan (every minute) and at every worker start",
        lambda s: stalled_query(s.now, LEASE, RESCAN_BATCH),
    ),
    HotQuery(
        "jobs_oldest_waiting",
        "per /status, /v1/status and /metrics scrape",
        lambda s: oldest_waiting_query(s.now),
    ),
    HotQuery(
        "jobs_recent_failures",
        "per /status and /v1/status",
        lambda s: recent_failures_query(STATUS_FAILURES),
    ),
    HotQuery(
        "webhook_event",
        "per deliver job",
        lambda s: event_query(s.event_id),
    ),
    HotQuery(
        "webhooks_failing",
        "per /status and /v1/status: endpoints failing in the last 24 hours",
        lambda s: failing_endpoints_query(s.now - STATUS_BASELINE, STATUS_ENDPOINTS),
    ),
    HotQuery(
        "import_journal",
        "per file of `filegate import`",
        lambda s: journal_query(s.import_tenant, s.source, s.sha256),
    ),
    HotQuery(
        "signal_totals",
        "per /status: five windows, the widest 24 hours",
        lambda s: totals_query(s.now - STATUS_BASELINE, s.now),
    ),
    HotQuery(
        "signal_per_minute",
        "per /status: the traffic chart, one hour",
        lambda s: per_minute_query("http.requests", s.now - STATUS_TRAFFIC, s.now),
    ),
)
