"""Share links: the row behind each signed URL (download count, revocation)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from filegate.db.models import ShareLinkRow
from filegate.db.repository.base import forget_expired, rows_changed
from filegate.domain import ShareLinkRecord


def _link_record(row: ShareLinkRow) -> ShareLinkRecord:
    return ShareLinkRecord(
        id=row.id,
        file_id=row.file_id,
        tenant=row.tenant,
        key_id=row.key_id,
        disposition=row.disposition,
        max_downloads=row.max_downloads,
        downloads=row.downloads,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class ShareLinks:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, record: ShareLinkRecord) -> None:
        self.session.add(
            ShareLinkRow(
                id=record.id,
                file_id=record.file_id,
                tenant=record.tenant,
                key_id=record.key_id,
                disposition=record.disposition,
                max_downloads=record.max_downloads,
                downloads=record.downloads,
                created_at=record.created_at,
                expires_at=record.expires_at,
                revoked_at=record.revoked_at,
            )
        )

    def get(self, link_id: str) -> ShareLinkRecord | None:
        row = self.session.get(ShareLinkRow, link_id)
        return _link_record(row) if row else None

    def count_download(self, link_id: str) -> bool:
        """One more download, if the link has one left; False when it is used up."""
        result = self.session.execute(
            update(ShareLinkRow)
            .where(
                ShareLinkRow.id == link_id,
                (ShareLinkRow.max_downloads.is_(None))
                | (ShareLinkRow.downloads < ShareLinkRow.max_downloads),
            )
            .values(downloads=ShareLinkRow.downloads + 1)
        )
        return rows_changed(result) == 1

    def revoke(self, link_id: str, tenant: str, file_id: str, now: datetime) -> bool:
        result = self.session.execute(
            update(ShareLinkRow)
            .where(
                ShareLinkRow.id == link_id,
                ShareLinkRow.tenant == tenant,
                ShareLinkRow.file_id == file_id,
                ShareLinkRow.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        return rows_changed(result) == 1

    def of_file(self, file_id: str) -> list[ShareLinkRecord]:
        rows = self.session.scalars(select(ShareLinkRow).where(ShareLinkRow.file_id == file_id))
        return [_link_record(row) for row in rows]

    def forget_expired(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` links that expired before ``cutoff``, oldest first."""
        return forget_expired(self.session, ShareLinkRow, cutoff, limit)
