"""SQLAlchemy models. Alembic migrations in ``migrations/`` must match these (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints keep migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite would otherwise hand back naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_tenant_id", "tenant", "id"),
        Index("ix_files_state", "state"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str | None] = mapped_column(String(1024))
    display_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    declared_type: Mapped[str | None] = mapped_column(String(255))
    detected_type: Mapped[str | None] = mapped_column(String(255))
    profile: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    inspected_at: Mapped[datetime | None] = mapped_column()
    # The inspection's verdict while it waits for the promote job (state is still quarantined).
    verdict: Mapped[str | None] = mapped_column(String(16))
    # The upload as received; ``sha256`` and ``size`` are what is served, which differ when a
    # sanitised copy replaced it. NULL for files inspected before these columns existed.
    received_sha256: Mapped[str | None] = mapped_column(String(64))
    received_size: Mapped[int | None] = mapped_column(BigInteger)
    # What the sanitised copy changed; NULL when the upload itself is served.
    sanitized: Mapped[list[str] | None] = mapped_column(JSON)
    # The upload token's id, or the API key's, that uploaded it (ids never repeat across the
    # two); NULL for files uploaded before 0009.
    uploaded_by: Mapped[str | None] = mapped_column(String(26))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class UploadRow(Base):
    """A resumable (tus) upload while its bytes arrive; complete ones share the file's id."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_state_expires_at", "state", "expires_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    length: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    metadata_header: Mapped[str] = mapped_column(String(4096))
    filename: Mapped[str | None] = mapped_column(String(1024))
    filetype: Mapped[str | None] = mapped_column(String(255))
    concat: Mapped[str | None] = mapped_column(String(8))
    parts: Mapped[list[str] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()
    # As FileRow.uploaded_by: the file a complete upload becomes inherits it.
    uploaded_by: Mapped[str | None] = mapped_column(String(26))


class JobRow(Base):
    """The job ledger: one row per (kind, subject); the queue engine only carries the trigger.

    Written in the same transaction as the change that asks for the job, so a job can never be
    lost between a commit and the broker; a sweep re-sends what the broker lost.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("kind", "subject", name="uq_jobs_kind_subject"),
        Index("ix_jobs_state_run_after", "state", "run_after"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column()
    enqueued_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(String(1024))
    # The request that caused the job (or the job that queued it): its log lines carry it.
    request_id: Mapped[str | None] = mapped_column(String(128))


class WebhookEndpointRow(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    # "whsec_" + base64: the Standard Webhooks secret format.
    secret: Mapped[str] = mapped_column(String(128))
    events: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()


class WebhookEventRow(Base):
    """One event for one endpoint: the outbox row its deliveries are retried from."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "type", "subject", name="uq_webhook_events_endpoint_id"),
        # The status page's failing endpoints: undelivered events of the last day (0008).
        Index("ix_webhook_events_state_created_at", "state", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(26))
    tenant: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(26))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()


class ImportRow(Base):
    """The bulk-import journal: a source file (path + sha256) imported once per tenant."""

    __tablename__ = "imports"
    __table_args__ = (UniqueConstraint("tenant", "source", "sha256", name="uq_imports_tenant"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(2048))
    sha256: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column()


class SignalMinuteRow(Base):
    """One minute of one signal for one release, summed over every process (status page).

    A histogram is one row per bucket: ``label`` is the bucket's upper bound, ``total`` the sum
    of the values that fell in it. Counters use ``label`` for their dimension (a status class,
    an error code, a job) and leave ``total`` at 0.
    """

    __tablename__ = "signal_minutes"

    minute: Mapped[datetime] = mapped_column(primary_key=True)
    release: Mapped[str] = mapped_column(String(128), primary_key=True)
    signal: Mapped[str] = mapped_column(String(48), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[float] = mapped_column(Float)


class ProcessRow(Base):
    """A filegate process that served: what release it ran, since when, last heard of when.

    The deployments on the status page are read from here, not guessed from traffic.
    """

    __tablename__ = "processes"
    __table_args__ = (Index("ix_processes_last_seen_at", "last_seen_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    release: Mapped[str] = mapped_column(String(128))
    # api, worker, or api+worker (an API process with the embedded worker).
    role: Mapped[str] = mapped_column(String(16))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()


class ShareLinkRow(Base):
    """A share link handed out: its key, limits and whether it was revoked.

    The URL carries and signs everything needed to check it; the row is what the URL cannot
    hold, a download count and a revocation.
    """

    __tablename__ = "share_links"
    # The purge deletes links some days past their expiry without reading the whole table.
    __table_args__ = (Index("ix_share_links_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(26), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(32))
    # attachment or inline
    disposition: Mapped[str] = mapped_column(String(16))
    max_downloads: Mapped[int | None] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class UploadTokenRow(Base):
    """An upload token a backend minted for a browser: its limits, and how many uploads it
    created (counted in the row, so parallel creates cannot pass ``max_files``)."""

    __tablename__ = "upload_tokens"
    # The purge deletes tokens some days past their expiry without reading the whole table.
    __table_args__ = (Index("ix_upload_tokens_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    # The API key that minted it.
    key_id: Mapped[str] = mapped_column(String(26))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    profile: Mapped[str] = mapped_column(String(64))
    max_size: Mapped[int] = mapped_column(BigInteger)
    max_files: Mapped[int] = mapped_column(Integer)
    files_created: Mapped[int] = mapped_column(Integer)
    # Metadata the browser cannot override.
    fixed_metadata: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ReviewAuditRow(Base):
    """The review console's audit log: one row per operator action, never changed or deleted.

    Written in the transaction that changes the file; triggers (0010) refuse UPDATE and DELETE
    on both databases. No foreign key to ``files``: the row outlives a deleted file.
    """

    __tablename__ = "review_audit"
    __table_args__ = (
        # A file's page shows its rows; the export reads one tenant's, oldest first.
        Index("ix_review_audit_file_id", "file_id"),
        Index("ix_review_audit_tenant_id", "tenant", "id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    at: Mapped[datetime] = mapped_column()
    tenant: Mapped[str] = mapped_column(String(64))
    actor_key_id: Mapped[str] = mapped_column(String(26))
    # The key's name and prefix at the time: a key renamed or revoked later changes nothing here.
    actor: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(16))
    file_id: Mapped[str] = mapped_column(String(26))
    reason: Mapped[str] = mapped_column(String(2000))
    before_state: Mapped[str] = mapped_column(String(16))
    # NULL: the file was deleted.
    after_state: Mapped[str | None] = mapped_column(String(16))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON)
