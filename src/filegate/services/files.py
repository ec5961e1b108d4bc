"""Reading, listing and deleting files, always within the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from sqlalchemy.exc import OperationalError

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.domain import Action, Area, FileRecord, FileState, Finding, Principal, parse_id
from filegate.errors import ErrorCode, FilegateError
from filegate.inspect.pipeline import explain
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

MAX_PAGE_SIZE = 200


def get_file(db: Database, principal: Principal, file_id: str) -> FileRecord:
    """The caller's file; another tenant's file, or for an upload token a file it did not
    upload, is reported exactly like a missing one."""
    parse_id(file_id)
    with db.session() as session:
        record = Files(session).get(file_id, tenant=principal.tenant)
    if record is None or not principal.owns(record.uploaded_by):
        raise _no_such_file()
    return record


def explain_findings(settings: Settings, record: FileRecord) -> list[tuple[Finding, Action, str]]:
    """Each finding with what the file's profile, as configured now, does with it and why."""
    try:
        policy = settings.profile(record.profile)
    except FilegateError:
        gone = f"profile {record.profile!r} is no longer configured: the file was rejected"
        return [(finding, Action.REJECT, gone) for finding in record.findings]
    return [(finding, *explain(policy, finding)) for finding in record.findings]


def list_files(
    db: Database,
    principal: Principal,
    *,
    state: FileState | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[FileRecord], str | None]:
    """One page, newest first, and the cursor for the next page (None at the end)."""
    if cursor is not None and not _is_cursor(cursor):
        raise FilegateError(ErrorCode.INVALID_CURSOR, "The cursor is not one this API returned.")
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    with db.session() as session:
        page = Files(session).page(principal.tenant, state=state, before=cursor, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].id if more else None)


def readable_file(db: Database, principal: Principal, file_id: str) -> FileRecord:
    """The caller's file if its content may be served: only clean files are."""
    record = get_file(db, principal, file_id)
    if record.state is FileState.QUARANTINED:
        raise FilegateError(
            ErrorCode.FILE_NOT_READY,
            "The file is still being inspected.",
            state=record.state.value,
        )
    if record.state is FileState.REJECTED:
        raise FilegateError(
            ErrorCode.FILE_REJECTED,
            "The file was rejected by inspection and is never served.",
            state=record.state.value,
            findings=[f.code for f in record.findings],
        )
    return record


def read_content(storage: Storage, record: FileRecord, start: int, end: int) -> Iterator[bytes]:
    return storage.read(Area.CLEAN, record.id, start, end)


def delete_file(db: Database, storage: Storage, principal: Principal, file_id: str) -> None:
    """Delete the row first: once it is gone nothing serves the bytes, whatever storage does.

    On a full disk the database cannot write even a delete (SQLite journals it first), so
    deleting, the way to free space, would fail too. Then the bytes of the caller's file go
    first, which frees the room the row's delete needs.
    """
    parse_id(file_id)
    try:
        _delete_row(db, principal.tenant, file_id)
    except OperationalError as exc:
        if not is_disk_full(exc):
            raise
        with db.session() as session:
            if Files(session).get(file_id, principal.tenant) is None:
                raise _no_such_file() from None
        _delete_bytes(storage, file_id)
        log.warning("file.deleted_on_full_disk", file_id=file_id, tenant=principal.tenant)
        _delete_row(db, principal.tenant, file_id)
    _delete_bytes(storage, file_id)
    log.info("file.deleted", file_id=file_id, tenant=principal.tenant)


def is_disk_full(exc: OperationalError) -> bool:
    """SQLite's SQLITE_FULL, or PostgreSQL's disk_full (53100) / an ENOSPC it reports."""
    text = str(exc.orig)
    return "disk is full" in text or "No space left" in text or "53100" in text


def _delete_row(db: Database, tenant: str, file_id: str) -> None:
    with db.session() as session:
        if not Files(session).delete(file_id, tenant):
            raise _no_such_file()


def _delete_bytes(storage: Storage, file_id: str) -> None:
    for area in Area:
        storage.delete(area, file_id)


def _no_such_file() -> FilegateError:
    return FilegateError(ErrorCode.FILE_NOT_FOUND, "No such file.")


def _is_cursor(cursor: str) -> bool:
    try:
        parse_id(cursor)
    except FilegateError:
        return False
    return True
