"""Repositories: the only code that speaks SQL. They take a session and return domain records."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from filegate.db.models import (
    ApiKeyRow,
    FileRow,
    ImportRow,
    JobRow,
    UploadRow,
    WebhookEndpointRow,
    WebhookEventRow,
)
from filegate.domain import (
    ApiKeyRecord,
    EventType,
    FileRecord,
    FileState,
    Finding,
    JobKind,
    JobRecord,
    JobState,
    Scope,
    UploadRecord,
    UploadState,
    WebhookEndpointRecord,
    WebhookEventRecord,
    new_id,
    utcnow,
)


def _file_record(row: FileRow) -> FileRecord:
    return FileRecord(
        id=row.id,
        tenant=row.tenant,
        original_name=row.original_name,
        display_name=row.display_name,
        size=row.size,
        sha256=row.sha256,
        declared_type=row.declared_type,
        detected_type=row.detected_type,
        profile=row.profile,
        state=FileState(row.state),
        findings=tuple(Finding.of(f) for f in row.findings),
        created_at=row.created_at,
        updated_at=row.updated_at,
        inspected_at=row.inspected_at,
        received_sha256=row.received_sha256,
        received_size=row.received_size,
        sanitized=tuple(row.sanitized or ()),
    )


class Files:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: FileRecord) -> None:
        self.session.add(
            FileRow(
                id=record.id,
                tenant=record.tenant,
                original_name=record.original_name,
                display_name=record.display_name,
                size=record.size,
                sha256=record.sha256,
                declared_type=record.declared_type,
                detected_type=record.detected_type,
                profile=record.profile,
                state=record.state.value,
                findings=[f.as_dict() for f in record.findings],
                created_at=record.created_at,
                updated_at=record.updated_at,
                inspected_at=record.inspected_at,
                received_sha256=record.received_sha256 or record.sha256,
                received_size=record.size if record.received_size is None else record.received_size,
            )
        )

    def get(self, file_id: str, tenant: str | None = None) -> FileRecord | None:
        """The file, or None when missing or owned by another tenant (callers can't tell which)."""
        query = select(FileRow).where(FileRow.id == file_id)
        if tenant is not None:
            query = query.where(FileRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _file_record(row) if row else None

    def page(
        self, tenant: str, *, state: FileState | None, before: str | None, limit: int
    ) -> list[FileRecord]:
        """Newest first; ids are ULIDs, so ``before`` (the last id seen) is the cursor."""
        query = select(FileRow).where(FileRow.tenant == tenant)
        if state is not None:
            query = query.where(FileRow.state == state.value)
        if before is not None:
            query = query.where(FileRow.id < before)
        query = query.order_by(FileRow.id.desc()).limit(limit)
        return [_file_record(row) for row in self.session.scalars(query)]

    def stored(self, tenant: str) -> tuple[int, int]:
        """How many files the tenant keeps, and their bytes."""
        query = select(func.count(), func.coalesce(func.sum(FileRow.size), 0)).where(
            FileRow.tenant == tenant
        )
        files, size = self.session.execute(query).one()
        return int(files), int(size)

    def delete(self, file_id: str, tenant: str) -> bool:
        result = self.session.execute(
            delete(FileRow).where(FileRow.id == file_id, FileRow.tenant == tenant)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_verdict(
        self,
        file_id: str,
        *,
        state: FileState,
        findings: Sequence[Finding],
        detected_type: str | None,
        size: int | None = None,
        sha256: str | None = None,
        sanitized: Sequence[str] = (),
    ) -> bool:
        """Store an inspection's verdict for the promote job; False if one is already stored.

        The file stays quarantined until ``promote``. ``size`` and ``sha256`` change when a
        sanitised copy replaces the upload, and ``sanitized`` says what it changed.
        """
        now = utcnow()
        values: dict[str, object] = {
            "verdict": state.value,
            "findings": [f.as_dict() for f in findings],
            "detected_type": detected_type,
            "inspected_at": now,
            "updated_at": now,
        }
        if size is not None and sha256 is not None:
            values.update(size=size, sha256=sha256, sanitized=list(sanitized))
        result = self.session.execute(
            update(FileRow)
            .where(
                FileRow.id == file_id,
                FileRow.state == FileState.QUARANTINED.value,
                FileRow.verdict.is_(None),
            )
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def with_verdict(self, file_id: str) -> tuple[FileRecord | None, FileState | None]:
        """The file and the verdict stored for it but not yet acted on (one query)."""
        row = self.session.scalars(select(FileRow).where(FileRow.id == file_id)).one_or_none()
        if row is None:
            return None, None
        return _file_record(row), FileState(row.verdict) if row.verdict else None

    def promote(self, file_id: str) -> bool:
        """Move a quarantined file to its stored verdict; False if done already (or no verdict)."""
        result = self.session.execute(
            update(FileRow)
            .where(
                FileRow.id == file_id,
                FileRow.state == FileState.QUARANTINED.value,
                FileRow.verdict.is_not(None),
            )
            .values(state=FileRow.verdict, updated_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_lost(self, file_id: str, finding: Finding) -> bool:
        """A clean file whose bytes are gone from storage: reject it rather than serve a 503."""
        result = self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.CLEAN.value)
            .values(
                state=FileState.REJECTED.value,
                verdict=FileState.REJECTED.value,
                findings=FileRow.findings,
                updated_at=utcnow(),
            )
        )
        if result.rowcount:  # type: ignore[attr-defined]
            row = self.session.get(FileRow, file_id)
            if row is not None:
                row.findings = [*row.findings, finding.as_dict()]
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def purge(self, file_id: str) -> bool:
        """Delete a rejected file's row (its bytes go first); guarded by its state."""
        result = self.session.execute(
            delete(FileRow).where(FileRow.id == file_id, FileRow.state == FileState.REJECTED.value)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def rejected_before(self, cutoff: datetime, limit: int) -> list[str]:
        query = (
            select(FileRow.id)
            .where(FileRow.state == FileState.REJECTED.value, FileRow.updated_at < cutoff)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def states(self, ids: Collection[str]) -> dict[str, FileState]:
        """The state of each id that has a row (for reconciliation)."""
        if not ids:
            return {}
        query = select(FileRow.id, FileRow.state).where(FileRow.id.in_(list(ids)))
        return {row.id: FileState(row.state) for row in self.session.execute(query)}

    def ids_in_state(self, state: FileState, after: str, limit: int) -> list[str]:
        query = (
            select(FileRow.id)
            .where(FileRow.state == state.value, FileRow.id > after)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def waiting(self, limit: int) -> list[tuple[str, bool]]:
        """Quarantined files as (id, has a verdict): each needs an inspect or a promote job."""
        query = (
            select(FileRow.id, FileRow.verdict)
            .where(FileRow.state == FileState.QUARANTINED.value)
            .order_by(FileRow.id)
            .limit(limit)
        )
        return [(row.id, row.verdict is not None) for row in self.session.execute(query)]

    def note_findings(self, file_id: str, findings: Sequence[Finding]) -> None:
        """Show why a file is still quarantined (e.g. the scanner is down) without deciding."""
        self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.state == FileState.QUARANTINED.value)
            .values(findings=[f.as_dict() for f in findings], updated_at=utcnow())
        )


def _key_record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        tenant=row.tenant,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(Scope(s) for s in row.scopes.split(",") if s),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeys:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: ApiKeyRecord, key_hash: str) -> None:
        self.session.add(
            ApiKeyRow(
                id=record.id,
                tenant=record.tenant,
                name=record.name,
                prefix=record.prefix,
                key_hash=key_hash,
                scopes=",".join(sorted(s.value for s in record.scopes)),
                created_at=record.created_at,
                revoked_at=record.revoked_at,
            )
        )

    def find_active(self, key_hash: str) -> ApiKeyRecord | None:
        query = select(ApiKeyRow).where(
            ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None)
        )
        row = self.session.scalars(query).one_or_none()
        return _key_record(row) if row else None

    def all(self, tenant: str | None = None) -> list[ApiKeyRecord]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if tenant is not None:
            query = query.where(ApiKeyRow.tenant == tenant)
        return [_key_record(row) for row in self.session.scalars(query)]

    def revoke(self, key_id: str, when: datetime) -> bool:
        result = self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=when)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _upload_record(row: UploadRow) -> UploadRecord:
    return UploadRecord(
        id=row.id,
        tenant=row.tenant,
        profile=row.profile,
        length=row.length,
        offset=row.offset,
        metadata_header=row.metadata_header,
        filename=row.filename,
        filetype=row.filetype,
        concat=row.concat,
        parts=tuple(row.parts or ()),
        state=UploadState(row.state),
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Uploads:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: UploadRecord) -> None:
        self.session.add(
            UploadRow(
                id=record.id,
                tenant=record.tenant,
                profile=record.profile,
                length=record.length,
                offset=record.offset,
                metadata_header=record.metadata_header,
                filename=record.filename,
                filetype=record.filetype,
                concat=record.concat,
                parts=list(record.parts) if record.parts else None,
                state=record.state.value,
                expires_at=record.expires_at,
                created_at=record.created_at,
                updated_at=record.updated_at,
            )
        )

    def get(self, upload_id: str, tenant: str | None = None) -> UploadRecord | None:
        query = select(UploadRow).where(UploadRow.id == upload_id)
        if tenant is not None:
            query = query.where(UploadRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _upload_record(row) if row else None

    def in_flight(self, tenant: str, now: datetime) -> list[tuple[str, int, int, int]]:
        """Per profile: (profile, uploads, declared bytes, uploads with a deferred length) of
        the tenant's uploads that hold or await bytes: those still receiving, and complete
        partial uploads a final may still join. A final is left out: its bytes are its parts'."""
        receiving = (UploadRow.state == UploadState.RECEIVING.value) & (
            UploadRow.concat.is_(None) | (UploadRow.concat != "final")
        )
        waiting_part = (
            (UploadRow.state == UploadState.COMPLETE.value)
            & (UploadRow.concat == "partial")
            & (UploadRow.expires_at > now)
        )
        query = (
            select(
                UploadRow.profile,
                func.count(),
                func.coalesce(func.sum(UploadRow.length), 0),
                func.count() - func.count(UploadRow.length),
            )
            .where(UploadRow.tenant == tenant, receiving | waiting_part)
            .group_by(UploadRow.profile)
        )
        rows = self.session.execute(query).all()
        return [(p, int(c), int(n or 0), int(d)) for p, c, n, d in rows]

    def many(self, ids: Sequence[str], tenant: str) -> dict[str, UploadRecord]:
        query = select(UploadRow).where(UploadRow.id.in_(list(ids)), UploadRow.tenant == tenant)
        return {row.id: _upload_record(row) for row in self.session.scalars(query)}

    def advance(
        self,
        upload_id: str,
        *,
        expected: int,
        offset: int,
        length: int | None,
        expires_at: datetime,
    ) -> bool:
        """Record a durable offset; guarded by the offset the writer started from."""
        result = self.session.execute(
            update(UploadRow)
            .where(
                UploadRow.id == upload_id,
                UploadRow.offset == expected,
                UploadRow.state == UploadState.RECEIVING.value,
            )
            .values(offset=offset, length=length, expires_at=expires_at, updated_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_state(
        self,
        upload_id: str,
        state: UploadState,
        *,
        length: int | None = None,
        current: UploadState = UploadState.RECEIVING,
    ) -> bool:
        values: dict[str, object] = {"state": state.value, "updated_at": utcnow()}
        if length is not None:
            values.update(length=length, offset=length)
        result = self.session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id, UploadRow.state == current.value)
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def waiting_finals(self, tenant: str) -> list[UploadRecord]:
        query = select(UploadRow).where(
            UploadRow.tenant == tenant,
            UploadRow.concat == "final",
            UploadRow.state == UploadState.RECEIVING.value,
        )
        return [_upload_record(row) for row in self.session.scalars(query)]

    def expired(self, now: datetime, limit: int) -> list[UploadRecord]:
        """Unfinished uploads past their ``Upload-Expires``."""
        query = (
            select(UploadRow)
            .where(UploadRow.state == UploadState.RECEIVING.value, UploadRow.expires_at < now)
            .order_by(UploadRow.expires_at)
            .limit(limit)
        )
        return [_upload_record(row) for row in self.session.scalars(query)]

    def expire(
        self, upload_id: str, now: datetime, current: UploadState = UploadState.RECEIVING
    ) -> bool:
        """Mark an upload expired, guarded by its state and expiry time."""
        result = self.session.execute(
            update(UploadRow)
            .where(
                UploadRow.id == upload_id,
                UploadRow.state == current.value,
                UploadRow.expires_at < now,
            )
            .values(state=UploadState.EXPIRED.value, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def remove(self, upload_id: str, states: Collection[UploadState]) -> bool:
        result = self.session.execute(
            delete(UploadRow).where(
                UploadRow.id == upload_id, UploadRow.state.in_([s.value for s in states])
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def in_states(self, states: Collection[UploadState], limit: int) -> list[str]:
        query = (
            select(UploadRow.id)
            .where(UploadRow.state.in_([s.value for s in states]))
            .order_by(UploadRow.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def needing_bytes(self, ids: Collection[str]) -> set[str]:
        """Of ``ids``, the uploads whose bytes must stay: those still receiving, and complete
        partial uploads, which a final upload may join until they expire."""
        if not ids:
            return set()
        receiving = UploadRow.state == UploadState.RECEIVING.value
        partial = (UploadRow.state == UploadState.COMPLETE.value) & (UploadRow.concat == "partial")
        query = select(UploadRow.id).where(UploadRow.id.in_(list(ids)), receiving | partial)
        return set(self.session.scalars(query))

    def stale_partials(self, now: datetime, limit: int) -> list[str]:
        """Complete partial uploads past their ``Upload-Expires`` that no waiting final lists."""
        listed: set[str] = set()
        finals = select(UploadRow.parts).where(
            UploadRow.concat == "final", UploadRow.state == UploadState.RECEIVING.value
        )
        for parts in self.session.scalars(finals):
            listed.update(parts or ())
        query = (
            select(UploadRow.id)
            .where(
                UploadRow.concat == "partial",
                UploadRow.state == UploadState.COMPLETE.value,
                UploadRow.expires_at < now,
            )
            .order_by(UploadRow.expires_at)
            .limit(limit + len(listed))
        )
        return [upload_id for upload_id in self.session.scalars(query) if upload_id not in listed][
            :limit
        ]


def _insert_new(session: Session, model: type[Any], values: Mapping[str, Any]) -> bool:
    """Insert one row unless it would break a unique key; True if inserted.

    ``INSERT ... ON CONFLICT DO NOTHING`` (both SQLite and PostgreSQL): one statement, where a
    savepoint around an ORM add would cost a flush, a SAVEPOINT and a RELEASE on every call.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = model.__table__
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for a single-row INSERT here.
    return session.execute(statement.returning(*table.primary_key)).first() is not None


_JOBS = cast(Table, JobRow.__table__)


def _job_record(row: Any) -> JobRecord:
    # ``row``: a JobRow, or a Core row of the jobs table (same names).
    return JobRecord(
        id=row.id,
        kind=JobKind(row.kind),
        subject=row.subject,
        state=JobState(row.state),
        attempts=row.attempts,
        run_after=row.run_after,
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=row.outcome,
        error=row.error,
    )


class Jobs:
    """The job ledger. Every transition is a guarded UPDATE, so two workers cannot both win."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def want(
        self, kind: JobKind, subject: str, *, run_after: datetime | None = None
    ) -> JobRecord | None:
        """Ask for (kind, subject) to run, in the caller's transaction.

        Returns the job to dispatch after the commit, or None when it is already queued or
        running (one trigger is enough). A finished job is queued again: the handlers are
        idempotent and decide from the current state what, if anything, is left to do.
        """
        now = utcnow()
        when = run_after or now
        inserted = self._insert(kind, subject, now=now, run_after=when)
        if inserted is not None:
            return inserted
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.kind == kind.value,
                JobRow.subject == subject,
                JobRow.state.in_([JobState.DONE.value, JobState.FAILED.value]),
            )
            .values(
                state=JobState.QUEUED.value,
                attempts=0,
                run_after=when,
                enqueued_at=now,
                outcome=None,
                error=None,
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return self.get(kind, subject)

    def start_once(self, kind: JobKind, subject: str) -> JobRecord | None:
        """Insert a job already running (a schedule slot); None if it exists in any state."""
        now = utcnow()
        return self._insert(kind, subject, now=now, run_after=now, started=True)

    def _insert(
        self,
        kind: JobKind,
        subject: str,
        *,
        now: datetime,
        run_after: datetime,
        started: bool = False,
    ) -> JobRecord | None:
        """A new row for (kind, subject), queued or (``started``) running; None if one exists."""
        values: dict[str, Any] = {
            "id": new_id(),
            "kind": kind.value,
            "subject": subject,
            "state": (JobState.RUNNING if started else JobState.QUEUED).value,
            "attempts": 1 if started else 0,
            "run_after": run_after,
            "enqueued_at": now,
            "started_at": now if started else None,
        }
        if not _insert_new(self.session, JobRow, values):
            return None
        return _job_record(JobRow(**values))

    def get(self, kind: JobKind, subject: str) -> JobRecord | None:
        # populate_existing: the guarded UPDATEs above bypass the identity map, so a row
        # loaded earlier in this session would otherwise come back stale (one query, no refresh).
        query = (
            select(JobRow)
            .where(JobRow.kind == kind.value, JobRow.subject == subject)
            .execution_options(populate_existing=True)
        )
        row = self.session.scalars(query).one_or_none()
        return _job_record(row) if row else None

    def claim(self, kind: JobKind, subject: str, lease: timedelta) -> JobRecord | None:
        """Take a job that is due, or whose runner has held it longer than ``lease`` (crashed)."""
        now = utcnow()
        jobs = _JOBS.c
        # UPDATE ... RETURNING: the claim and the claimed row in one statement.
        row = self.session.execute(
            update(_JOBS)
            .where(
                jobs.kind == kind.value,
                jobs.subject == subject,
                or_(
                    and_(jobs.state == JobState.QUEUED.value, jobs.run_after <= now),
                    and_(jobs.state == JobState.RUNNING.value, jobs.started_at < now - lease),
                ),
            )
            .values(
                state=JobState.RUNNING.value,
                started_at=now,
                finished_at=None,
                attempts=jobs.attempts + 1,
            )
            .returning(*jobs)
        ).one_or_none()
        return _job_record(row) if row is not None else None

    def release(self, kind: JobKind, subject: str, run_after: datetime) -> JobRecord | None:
        """A running job whose worker is stopping goes back to queued, due at ``run_after``."""
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.kind == kind.value,
                JobRow.subject == subject,
                JobRow.state == JobState.RUNNING.value,
            )
            .values(state=JobState.QUEUED.value, run_after=run_after, started_at=None)
        )
        return self.get(kind, subject) if result.rowcount else None  # type: ignore[attr-defined]

    def finish(self, job_id: str, started_at: datetime | None, outcome: str) -> bool:
        """Mark done; guarded by the claim's start time so a runner that lost its lease can't."""
        return self._end(job_id, started_at, state=JobState.DONE, outcome=outcome, error=None)

    def fail(
        self, job_id: str, started_at: datetime | None, error: str, retry_at: datetime | None
    ) -> bool:
        """Queue again at ``retry_at``, or (None) give up: the job stays visible as failed."""
        if retry_at is None:
            return self._end(job_id, started_at, state=JobState.FAILED, outcome=None, error=error)
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.state == JobState.RUNNING.value,
                JobRow.started_at == started_at,
            )
            .values(state=JobState.QUEUED.value, run_after=retry_at, error=error[:1024])
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _end(
        self,
        job_id: str,
        started_at: datetime | None,
        *,
        state: JobState,
        outcome: str | None,
        error: str | None,
    ) -> bool:
        result = self.session.execute(
            update(JobRow)
            .where(
                JobRow.id == job_id,
                JobRow.state == JobState.RUNNING.value,
                JobRow.started_at == started_at,
            )
            .values(
                state=state.value,
                finished_at=utcnow(),
                outcome=outcome,
                error=error[:1024] if error else None,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def stalled(self, now: datetime, lease: timedelta, limit: int) -> list[JobRecord]:
        """Jobs whose trigger was lost: queued and overdue by a lease, or running past it."""
        query = (
            select(JobRow)
            .where(
                or_(
                    and_(JobRow.state == JobState.QUEUED.value, JobRow.run_after < now - lease),
                    and_(JobRow.state == JobState.RUNNING.value, JobRow.started_at < now - lease),
                )
            )
            .order_by(JobRow.run_after)
            .limit(limit)
        )
        return [_job_record(row) for row in self.session.scalars(query)]

    def active(self, kind: JobKind, subjects: Collection[str]) -> set[str]:
        """Which of ``subjects`` have a queued or running job of ``kind``."""
        if not subjects:
            return set()
        query = select(JobRow.subject).where(
            JobRow.kind == kind.value,
            JobRow.subject.in_(list(subjects)),
            JobRow.state.in_([JobState.QUEUED.value, JobState.RUNNING.value]),
        )
        return set(self.session.scalars(query))

    def counts(self) -> dict[tuple[str, str], int]:
        query = select(JobRow.kind, JobRow.state, func.count()).group_by(JobRow.kind, JobRow.state)
        return {(kind, state): count for kind, state, count in self.session.execute(query)}

    def oldest_waiting(self, now: datetime) -> dict[str, datetime]:
        """Per kind, the enqueue time of the oldest job that is due and not yet started."""
        query = (
            select(JobRow.kind, func.min(JobRow.enqueued_at))
            .where(JobRow.state == JobState.QUEUED.value, JobRow.run_after <= now)
            .group_by(JobRow.kind)
        )
        return {str(kind): when for kind, when in self.session.execute(query)}

    def recent_failures(self, limit: int) -> list[JobRecord]:
        query = (
            select(JobRow)
            .where(JobRow.state == JobState.FAILED.value)
            .order_by(JobRow.finished_at.desc())
            .limit(limit)
        )
        return [_job_record(row) for row in self.session.scalars(query)]

    def forget_finished(self, cutoff: datetime, kinds: Iterable[JobKind]) -> int:
        """Drop finished ledger rows of ``kinds`` older than ``cutoff`` (schedule slots pile up)."""
        result = self.session.execute(
            delete(JobRow).where(
                JobRow.state == JobState.DONE.value,
                JobRow.kind.in_([k.value for k in kinds]),
                JobRow.finished_at < cutoff,
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _endpoint_record(row: WebhookEndpointRow) -> WebhookEndpointRecord:
    return WebhookEndpointRecord(
        id=row.id,
        tenant=row.tenant,
        url=row.url,
        events=frozenset(EventType(e) for e in row.events),
        created_at=row.created_at,
    )


class WebhookEndpoints:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: WebhookEndpointRecord, secret: str) -> None:
        self.session.add(
            WebhookEndpointRow(
                id=record.id,
                tenant=record.tenant,
                url=record.url,
                secret=secret,
                events=sorted(e.value for e in record.events),
                created_at=record.created_at,
            )
        )

    def active(self, tenant: str | None = None) -> list[WebhookEndpointRecord]:
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.deleted_at.is_(None))
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        return [_endpoint_record(r) for r in self.session.scalars(query.order_by("id"))]

    def get(self, endpoint_id: str, tenant: str | None = None) -> WebhookEndpointRecord | None:
        query = select(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        row = self.session.scalars(query).one_or_none()
        return _endpoint_record(row) if row else None

    def secret(self, endpoint_id: str) -> str | None:
        query = select(WebhookEndpointRow.secret).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        return self.session.scalar(query)

    def remove(self, endpoint_id: str, tenant: str | None = None) -> bool:
        query = update(WebhookEndpointRow).where(
            WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.deleted_at.is_(None)
        )
        if tenant is not None:
            query = query.where(WebhookEndpointRow.tenant == tenant)
        result = self.session.execute(query.values(deleted_at=utcnow()))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _event_record(row: WebhookEventRow) -> WebhookEventRecord:
    return WebhookEventRecord(
        id=row.id,
        endpoint_id=row.endpoint_id,
        tenant=row.tenant,
        type=EventType(row.type),
        subject=row.subject,
        payload=row.payload,
        state=row.state,
        attempts=row.attempts,
        last_status=row.last_status,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


class WebhookEvents:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        endpoint_id: str,
        tenant: str,
        type_: EventType,
        subject: str,
        payload: Mapping[str, Any],
    ) -> str | None:
        """Record one event for one endpoint; None if this (endpoint, type, subject) exists."""
        event_id = new_id()
        values = {
            "id": event_id,
            "endpoint_id": endpoint_id,
            "tenant": tenant,
            "type": type_.value,
            "subject": subject,
            "payload": dict(payload),
            "state": "pending",
            "attempts": 0,
            "created_at": utcnow(),
        }
        return event_id if _insert_new(self.session, WebhookEventRow, values) else None

    def get(self, event_id: str) -> WebhookEventRecord | None:
        row = self.session.get(WebhookEventRow, event_id)
        return _event_record(row) if row else None

    def for_subject(self, subject: str) -> list[WebhookEventRecord]:
        query = select(WebhookEventRow).where(WebhookEventRow.subject == subject)
        return [_event_record(r) for r in self.session.scalars(query.order_by("id"))]

    def attempted(self, event_id: str, *, status: int | None, error: str | None) -> None:
        self.session.execute(
            update(WebhookEventRow)
            .where(WebhookEventRow.id == event_id, WebhookEventRow.state == "pending")
            .values(
                attempts=WebhookEventRow.attempts + 1,
                last_status=status,
                last_error=error[:1024] if error else None,
            )
        )

    def delivered(self, event_id: str) -> bool:
        result = self.session.execute(
            update(WebhookEventRow)
            .where(WebhookEventRow.id == event_id, WebhookEventRow.state == "pending")
            .values(state="delivered", delivered_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def given_up(self, event_id: str) -> bool:
        result = self.session.execute(
            update(WebhookEventRow)
            .where(WebhookEventRow.id == event_id, WebhookEventRow.state == "pending")
            .values(state="failed")
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class Imports:
    """The import journal, keyed by (tenant, source path, sha256)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, tenant: str, source: str, sha256: str) -> str | None:
        query = select(ImportRow.file_id).where(
            ImportRow.tenant == tenant, ImportRow.source == source, ImportRow.sha256 == sha256
        )
        return self.session.scalar(query)

    def record(self, tenant: str, source: str, sha256: str, file_id: str) -> bool:
        """Journal an import in the caller's transaction; False if another run journaled it."""
        values = {
            "id": new_id(),
            "tenant": tenant,
            "source": source,
            "sha256": sha256,
            "file_id": file_id,
            "created_at": utcnow(),
        }
        # The caller's pending rows are flushed before this statement, so a conflict of theirs
        # still raises; only this row's conflict reads as False.
        return _insert_new(self.session, ImportRow, values)

    def count(self, tenant: str) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(ImportRow).where(ImportRow.tenant == tenant)
            )
            or 0
        )
