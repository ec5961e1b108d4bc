"""The import journal: (tenant, source, sha256) -> file."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from filegate.db.models import (
    ImportRow,
)
from filegate.db.repository.base import insert_new
from filegate.domain import (
    new_id,
    utcnow,
)


def journal_query(tenant: str, source: str, sha256: str) -> Select[str]:
    return select(ImportRow.file_id).where(
        ImportRow.tenant == tenant, ImportRow.source == source, ImportRow.sha256 == sha256
    )


class Imports:
    """The import journal, keyed by (tenant, source path, sha256)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, tenant: str, source: str, sha256: str) -> str | None:
        return self.session.scalar(journal_query(tenant, source, sha256))

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
        return insert_new(self.session, ImportRow, values)

    def count(self, tenant: str) -> int:
        return int(
            self.session.scalar(
                select(func.count()).select_from(ImportRow).where(ImportRow.tenant == tenant)
            )
            or 0
        )
