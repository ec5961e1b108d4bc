"""Upload tokens (stored as digests) and the count of uploads each has made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from filegate.db.models import ApiKeyRow, UploadTokenRow
from filegate.db.repository.base import forget_expired, rows_changed
from filegate.domain import UploadGrant, UploadTokenRecord


def _token_record(row: UploadTokenRow) -> UploadTokenRecord:
    grant = UploadGrant(
        profile=row.profile,
        max_size=row.max_size,
        max_files=row.max_files,
        metadata=tuple(sorted(row.fixed_metadata.items())),
        expires_at=row.expires_at,
    )
    return UploadTokenRecord(
        id=row.id,
        tenant=row.tenant,
        key_id=row.key_id,
        grant=grant,
        files_created=row.files_created,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def active_token_query(token_hash: str, now: datetime) -> Select[UploadTokenRow]:
    """The token, if neither it nor the key that minted it is revoked, and it has not expired."""
    return (
        select(UploadTokenRow)
        .join(ApiKeyRow, ApiKeyRow.id == UploadTokenRow.key_id)
        .where(
            UploadTokenRow.token_hash == token_hash,
            UploadTokenRow.revoked_at.is_(None),
            UploadTokenRow.expires_at > now,
            ApiKeyRow.revoked_at.is_(None),
        )
    )


class UploadTokens:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: UploadTokenRecord, token_hash: str) -> None:
        grant = record.grant
        self.session.add(
            UploadTokenRow(
                id=record.id,
                tenant=record.tenant,
                key_id=record.key_id,
                token_hash=token_hash,
                profile=grant.profile,
                max_size=grant.max_size,
                max_files=grant.max_files,
                files_created=record.files_created,
                fixed_metadata=grant.fixed_metadata,
                created_at=record.created_at,
                expires_at=grant.expires_at,
                revoked_at=record.revoked_at,
            )
        )

    def find_active(self, token_hash: str, now: datetime) -> UploadTokenRecord | None:
        row = self.session.scalars(active_token_query(token_hash, now)).one_or_none()
        return _token_record(row) if row else None

    def get(self, token_id: str) -> UploadTokenRecord | None:
        row = self.session.get(UploadTokenRow, token_id)
        return _token_record(row) if row else None

    def take_upload(self, token_id: str, now: datetime) -> bool:
        """Count one more upload, unless that passes ``max_files`` (or the token lapsed).

        One guarded UPDATE: parallel uploads cannot both take the last one."""
        result = self.session.execute(
            update(UploadTokenRow)
            .where(
                UploadTokenRow.id == token_id,
                UploadTokenRow.files_created < UploadTokenRow.max_files,
                UploadTokenRow.revoked_at.is_(None),
                UploadTokenRow.expires_at > now,
            )
            .values(files_created=UploadTokenRow.files_created + 1)
        )
        return rows_changed(result) > 0

    def give_back(self, token_id: str) -> None:
        """Uncount an upload that failed before it was created."""
        self.session.execute(
            update(UploadTokenRow)
            .where(UploadTokenRow.id == token_id, UploadTokenRow.files_created > 0)
            .values(files_created=UploadTokenRow.files_created - 1)
        )

    def revoke(self, token_id: str, tenant: str, when: datetime) -> bool:
        result = self.session.execute(
            update(UploadTokenRow)
            .where(
                UploadTokenRow.id == token_id,
                UploadTokenRow.tenant == tenant,
                UploadTokenRow.revoked_at.is_(None),
            )
            .values(revoked_at=when)
        )
        return rows_changed(result) > 0

    def forget_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` tokens that expired before ``cutoff``, oldest first."""
        return forget_expired(self.session, UploadTokenRow, cutoff, limit)
