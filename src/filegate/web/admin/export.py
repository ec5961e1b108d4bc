"""The audit log as CSV (``GET /admin/audit.csv``), written a row at a time."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from filegate.domain import AuditRecord

HEAD = (
    "id",
    "at",
    "tenant",
    "actor_key_id",
    "actor",
    "action",
    "file_id",
    "reason",
    "before",
    "after",
    "extra",
)
# A spreadsheet runs a cell that starts with one of these as a formula; a reason must not.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_lines(rows: Iterator[AuditRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEAD)
    for row in rows:
        writer.writerow([_cell(value) for value in _values(row)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _values(row: AuditRecord) -> list[str]:
    return [
        row.id,
        row.at.isoformat(),
        row.tenant,
        row.actor_key_id,
        row.actor,
        row.action.value,
        row.file_id,
        row.reason,
        row.before.value,
        row.after.value if row.after else "deleted",
        json.dumps(row.extra, sort_keys=True, ensure_ascii=False),
    ]


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
