"""Resumable (tus) uploads while their bytes arrive."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from filegate.db.models import (
    UploadRow,
)
from filegate.db.repository.base import rows_changed
from filegate.domain import (
    UploadRecord,
    UploadState,
    utcnow,
)


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
        uploaded_by=row.uploaded_by,
    )


def upload_query(upload_id: str, tenant: str | None = None) -> Select[UploadRow]:
    query = select(UploadRow).where(UploadRow.id == upload_id)
    return query if tenant is None else query.where(UploadRow.tenant == tenant)


def in_flight_query(tenant: str, now: datetime) -> Select[str, int, int | None, int]:
    receiving = (UploadRow.state == UploadState.RECEIVING.value) & (
        UploadRow.concat.is_(None) | (UploadRow.concat != "final")
    )
    waiting_part = (
        (UploadRow.state == UploadState.COMPLETE.value)
        & (UploadRow.concat == "partial")
        & (UploadRow.expires_at > now)
    )
    return (
        select(
            UploadRow.profile,
            func.count(),
            func.coalesce(func.sum(UploadRow.length), 0),
            func.count() - func.count(UploadRow.length),
        )
        .where(UploadRow.tenant == tenant, receiving | waiting_part)
        .group_by(UploadRow.profile)
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
                uploaded_by=record.uploaded_by,
            )
        )

    def get(self, upload_id: str, tenant: str | None = None) -> UploadRecord | None:
        row = self.session.scalars(upload_query(upload_id, tenant)).one_or_none()
        return _upload_record(row) if row else None

    def in_flight(self, tenant: str, now: datetime) -> list[tuple[str, int, int, int]]:
        """Per profile: (profile, uploads, declared bytes, uploads with a deferred length) of
        the tenant's uploads that hold or await bytes: those still receiving, and complete
        partial uploads a final may still join. A final is left out: its bytes are its parts'."""
        rows = self.session.execute(in_flight_query(tenant, now)).all()
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
        return rows_changed(result) > 0

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
        return rows_changed(result) > 0

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
        return rows_changed(result) > 0

    def delete(self, upload_id: str, states: Collection[UploadState]) -> bool:
        """Delete the row while the upload is in one of ``states``."""
        result = self.session.execute(
            delete(UploadRow).where(
                UploadRow.id == upload_id, UploadRow.state.in_([s.value for s in states])
            )
        )
        return rows_changed(result) > 0

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
