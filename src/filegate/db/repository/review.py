"""The review console's queries on files: a filtered page, and the state changes a reviewer
makes, each guarded by the state the reviewer saw (a concurrent change makes it a no-op)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, exists, func, select, update
from sqlalchemy.orm import Session

from filegate.db.models import FileRow
from filegate.db.repository.base import rows_changed
from filegate.db.repository.files import _file_record
from filegate.domain import FileFilter, FileRecord, FileState, Finding, utcnow


@dataclass(frozen=True, slots=True)
class Served:
    """The bytes a file serves: their size and digest, and what sanitising changed in them."""

    size: int
    sha256: str
    sanitized: tuple[str, ...] = ()


def _has_finding(code: str, dialect: str) -> ColumnElement[bool]:
    """The file has a finding with ``code`` (findings are a JSON list of objects)."""
    if dialect == "postgresql":
        found = func.json_array_elements(FileRow.findings).table_valued("value")
        return exists(select(1).select_from(found).where(found.c.value.op("->>")("code") == code))
    found = func.json_each(FileRow.findings).table_valued("value")
    return exists(
        select(1).select_from(found).where(func.json_extract(found.c.value, "$.code") == code)
    )


def review_page_query(
    wanted: FileFilter, *, before: str | None, limit: int, dialect: str
) -> Select[FileRow]:
    query = select(FileRow).where(FileRow.tenant == wanted.tenant)
    if wanted.state is not None:
        query = query.where(FileRow.state == wanted.state.value)
    if wanted.profile:
        query = query.where(FileRow.profile == wanted.profile)
    if wanted.since is not None:
        query = query.where(FileRow.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(FileRow.created_at < wanted.until)
    if wanted.code:
        query = query.where(_has_finding(wanted.code, dialect))
    if before is not None:
        query = query.where(FileRow.id < before)
    return query.order_by(FileRow.id.desc()).limit(limit)


class ReviewFiles:
    def __init__(self, session: Session) -> None:
        self.session = session

    def page(self, wanted: FileFilter, *, before: str | None, limit: int) -> list[FileRecord]:
        """Newest first, ``before`` being the last id seen."""
        dialect = self.session.get_bind().dialect.name
        query = review_page_query(wanted, before=before, limit=limit, dialect=dialect)
        return [_file_record(row) for row in self.session.scalars(query)]

    def decide(
        self,
        file_id: str,
        tenant: str,
        *,
        before: FileState,
        after: FileState,
        served: Served | None = None,
        findings: Sequence[Finding] | None = None,
    ) -> bool:
        """Move a decided file from ``before`` to ``after``; False if it is not in ``before``.

        ``served`` describes the bytes served from now on, when they are not the ones the row
        names (a release serves what was kept in quarantine).
        """
        values: dict[str, object] = {
            "state": after.value,
            "verdict": after.value,
            "updated_at": utcnow(),
        }
        if findings is not None:
            values["findings"] = [f.as_dict() for f in findings]
        if served is not None:
            values.update(
                size=served.size, sha256=served.sha256, sanitized=list(served.sanitized) or None
            )
        result = self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.tenant == tenant, FileRow.state == before.value)
            .values(**values)
        )
        return rows_changed(result) > 0

    def requeue(self, file_id: str, tenant: str, *, before: FileState) -> bool:
        """Back to quarantine without a verdict, for the inspect job to judge again."""
        result = self.session.execute(
            update(FileRow)
            .where(FileRow.id == file_id, FileRow.tenant == tenant, FileRow.state == before.value)
            .values(
                state=FileState.QUARANTINED.value,
                verdict=None,
                findings=[],
                inspected_at=None,
                updated_at=utcnow(),
            )
        )
        return rows_changed(result) > 0
