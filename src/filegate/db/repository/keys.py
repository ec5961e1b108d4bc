"""API keys (stored as digests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from filegate.db.models import (
    ApiKeyRow,
)
from filegate.db.repository.base import rows_changed
from filegate.domain import (
    ApiKeyRecord,
    Scope,
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


def active_key_query(key_hash: str) -> Select[ApiKeyRow]:
    return select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash, ApiKeyRow.revoked_at.is_(None))


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
        row = self.session.scalars(active_key_query(key_hash)).one_or_none()
        return _key_record(row) if row else None

    def active_by_id(self, key_id: str) -> ApiKeyRecord | None:
        """The key with ``key_id`` unless revoked (a console session names its key by id)."""
        row = self.session.scalars(
            select(ApiKeyRow).where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
        ).one_or_none()
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
        return rows_changed(result) > 0
