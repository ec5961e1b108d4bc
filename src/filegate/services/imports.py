"""Bulk import: files from a directory or a CSV manifest take the same path as an upload.

Each source is hashed, then looked up in the journal (tenant, source path, sha256). A new one is
streamed into quarantine and registered: its file row, its inspect job and its journal row
commit in one transaction, so the journal never names a file that is missing, nor misses one
that was registered. A run killed at any point (even ``kill -9``) leaves at worst a quarantine
object whose transaction never committed: the ``reconcile`` job deletes such orphans after its
grace period, and the next run imports that source again because it has no journal row.
A source whose bytes change gets a new sha256, so it is imported again as a new file.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import hmac
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from io import BufferedReader
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from filegate.db.engine import Database
from filegate.db.repository import Files, Imports
from filegate.domain import Area, FileState, InspectionPolicy
from filegate.errors import ErrorCode, FilegateError
from filegate.jobs.base import JobQueue
from filegate.services.uploads import IncomingFile, UploadMeta, new_file_record, register_upload
from filegate.storage.base import Storage

log = structlog.get_logger(__name__)

CHUNK = 1024 * 1024
# The width of the journal's ``source`` column: a longer path could not be recorded.
MAX_SOURCE = 2048
# A verdict takes tens of milliseconds to seconds; polling faster only loads the database.
POLL_SECONDS = 0.25
# Ids per state query: far below SQLite's limit on bound parameters.
STATE_BATCH = 500
# The summary names this many rejected or failed files; the log has every one.
LISTED = 50
MANIFEST_COLUMNS = ("path", "name", "type")


class ImportOutcome(enum.StrEnum):
    IMPORTED = "imported"
    SKIPPED = "skipped"
    FAILED = "failed"


class Failure(enum.StrEnum):
    """Why a source was not imported: stable codes, so scripts can count them."""

    NOT_REGULAR_FILE = "not_regular_file"
    FILE_TOO_LARGE = "file_too_large"
    CHANGED = "changed_while_importing"
    UNREADABLE = "unreadable"
    PATH_TOO_LONG = "path_too_long"


@dataclass(frozen=True, slots=True)
class Source:
    """One entry to import. ``path`` is absolute with its parent resolved; the last component
    is taken as found and never followed, so a symlink stays a symlink (and is refused)."""

    path: Path
    name: str | None = None
    declared_type: str | None = None
    # Set when the entry could not even be listed (an unreadable directory).
    problem: str | None = None

    @property
    def key(self) -> str:
        """The journal's ``source``: undecodable bytes escaped, since the database holds text."""
        return os.fsencode(self.path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    outcome: ImportOutcome
    file_id: str | None = None
    size: int | None = None
    failure: Failure | None = None
    message: str | None = None


class _Refused(Exception):
    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


class _AlreadyJournaled(Exception):
    """Another run journaled the same source and bytes between our lookup and our commit."""


def read_sources(source: Path) -> list[Source]:
    """Every entry of a directory (recursive) or a CSV manifest; bad input fails before any."""
    if source.is_dir():
        return list(_walk(source.resolve()))
    if source.is_file():
        return _read_manifest(source.resolve())
    raise _source_error(f"{source} is neither a directory nor a CSV manifest.")


def _walk(root: Path) -> Iterator[Source]:
    """Depth first and sorted; only real directories are entered, every other entry is a Source."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            yield Source(directory, problem=f"cannot list: {exc.strerror or exc}")
            continue
        subdirectories = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(Path(entry.path))
            else:
                yield Source(Path(entry.path))
        stack.extend(reversed(subdirectories))


def _read_manifest(manifest: Path) -> list[Source]:
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as text:
            rows = list(csv.reader(text, strict=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise _source_error(f"cannot read the manifest {manifest}: {exc}") from None
    if not rows:
        raise _source_error(f"the manifest {manifest} is empty; it needs a header row.")
    columns = _manifest_columns(manifest, rows[0])
    return [
        _manifest_source(manifest, number, dict(zip(columns, row, strict=True)))
        for number, row in enumerate(rows[1:], start=2)
        if _row_fits(manifest, number, row, len(columns))
    ]


def _manifest_columns(manifest: Path, header: list[str]) -> list[str]:
    columns = [name.strip().lower() for name in header]
    unknown = [name for name in columns if name not in MANIFEST_COLUMNS]
    if unknown or len(set(columns)) != len(columns) or "path" not in columns:
        raise _source_error(
            f"{manifest}: the header must name a 'path' column and may add 'name' and 'type', "
            f"each once; found {', '.join(repr(c) for c in header)}."
        )
    return columns


def _row_fits(manifest: Path, number: int, row: list[str], width: int) -> bool:
    if not row:
        return False  # a blank line
    if len(row) != width:
        raise _source_error(f"{manifest}, row {number}: {len(row)} fields, the header has {width}.")
    return True


def _manifest_source(manifest: Path, number: int, row: dict[str, str]) -> Source:
    raw = row["path"].strip()
    if not raw or "\x00" in raw:
        raise _source_error(f"{manifest}, row {number}: the path is empty or not a path.")
    path = manifest.parent / raw
    return Source(
        path=path.parent.resolve() / path.name,
        name=row.get("name") or None,
        declared_type=row.get("type") or None,
    )


def _source_error(message: str) -> FilegateError:
    return FilegateError(ErrorCode.INVALID_REQUEST, message)


@dataclass(frozen=True, slots=True)
class Importer:
    """Imports one source at a time for a tenant, judged later by ``policy``."""

    db: Database
    storage: Storage
    queue: JobQueue
    tenant: str
    policy: InspectionPolicy

    def run(self, source: Source) -> FileResult:
        """Import ``source`` unless journaled already; never raises for a bad file."""
        try:
            result = self._import(source)
        except _Refused as refused:
            result = _failed(source, refused.failure, refused.message)
        except OSError as exc:
            result = _failed(source, Failure.UNREADABLE, f"cannot read: {exc.strerror or exc}")
        _log_result(result)
        return result

    def _import(self, source: Source) -> FileResult:
        key = source.key
        if source.problem is not None:
            raise _Refused(Failure.UNREADABLE, source.problem)
        if len(key) > MAX_SOURCE:
            raise _Refused(
                Failure.PATH_TOO_LONG, f"the path is longer than {MAX_SOURCE} characters"
            )
        with _open_regular(source.path) as file:
            sha256, size = _digest(file, self.policy.max_size)
            earlier = self._journaled(key, sha256)
            if earlier is not None:
                return FileResult(key, ImportOutcome.SKIPPED, file_id=earlier, size=size)
            file.seek(0)
            incoming = _copy(file, self.storage, self.policy.max_size, sha256)
        meta = UploadMeta(
            tenant=self.tenant,
            original_name=source.name or source.path.name,
            declared_type=source.declared_type,
            profile=self.policy.name,
        )
        record = new_file_record(incoming.id, size, sha256, meta)
        journal = partial(_journal, self.tenant, key, sha256, record.id)
        try:
            register_upload(
                self.db, self.storage, self.queue, record, also=journal, channel="import"
            )
        except _AlreadyJournaled:
            return FileResult(
                key, ImportOutcome.SKIPPED, file_id=self._journaled(key, sha256), size=size
            )
        return FileResult(key, ImportOutcome.IMPORTED, file_id=record.id, size=size)

    def _journaled(self, key: str, sha256: str) -> str | None:
        with self.db.session() as session:
            return Imports(session).find(self.tenant, key, sha256)


def _journal(tenant: str, source: str, sha256: str, file_id: str, session: Session) -> None:
    if not Imports(session).record(tenant, source, sha256, file_id):
        raise _AlreadyJournaled


def _open_regular(path: Path) -> BufferedReader:
    """Open a regular file without following a symlink or blocking on a FIFO; refuse the rest."""
    not_regular = _Refused(Failure.NOT_REGULAR_FILE, "not a regular file")
    # lstat first: opening a device can have side effects (a tape rewinds).
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise not_regular
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise not_regular from None  # swapped for a symlink since the lstat
        raise
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise not_regular
    return file


def _digest(file: BufferedReader, max_size: int) -> tuple[str, int]:
    """The sha256 and size, streamed; a file over the profile's cap is refused, not read."""
    if os.fstat(file.fileno()).st_size > max_size:
        raise _too_large(max_size)
    digest, size = hashlib.sha256(), 0
    while chunk := file.read(CHUNK):
        size += len(chunk)
        if size > max_size:
            raise _too_large(max_size)
        digest.update(chunk)
    return digest.hexdigest(), size


def _copy(file: BufferedReader, storage: Storage, max_size: int, sha256: str) -> IncomingFile:
    """Stream into quarantine; the copy must hash as the first pass did, or nothing is kept."""
    incoming = IncomingFile(storage, max_size)
    try:
        while chunk := file.read(CHUNK):
            incoming.write(chunk)
        copied = incoming.commit()
    except FilegateError as exc:
        incoming.abort()
        if exc.code is not ErrorCode.FILE_TOO_LARGE:
            raise
        raise _changed() from None  # it grew past the cap after the first pass
    except BaseException:
        incoming.abort()
        raise
    if not hmac.compare_digest(copied, sha256):
        storage.delete(Area.QUARANTINE, incoming.id)
        raise _changed()
    return incoming


def _changed() -> _Refused:
    return _Refused(Failure.CHANGED, "the file changed while it was being imported")


def _too_large(max_size: int) -> _Refused:
    return _Refused(Failure.FILE_TOO_LARGE, f"larger than the profile allows ({max_size} bytes)")


def _failed(source: Source, failure: Failure, message: str) -> FileResult:
    return FileResult(source.key, ImportOutcome.FAILED, failure=failure, message=message)


def _log_result(result: FileResult) -> None:
    level = log.warning if result.outcome is ImportOutcome.FAILED else log.info
    level(
        "import.file",
        path=result.source,
        outcome=result.outcome.value,
        file_id=result.file_id,
        size=result.size,
        reason=result.failure.value if result.failure else None,
    )


@dataclass
class Tally:
    """What a run did, kept small: the ids it imported or found, and every failure in full."""

    imported: dict[str, str] = field(default_factory=dict)  # file id -> source
    skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        if result.outcome is ImportOutcome.FAILED:
            self.failed.append(result)
        elif result.outcome is ImportOutcome.SKIPPED:
            self.skipped += 1
            if result.file_id is not None:
                self.skipped_ids.append(result.file_id)
        elif result.file_id is not None:
            self.imported[result.file_id] = result.source


def import_all(
    importer: Importer,
    sources: Iterable[Source],
    on_file: Callable[[FileResult], None] | None = None,
) -> Tally:
    tally = Tally()
    for source in sources:
        result = importer.run(source)
        tally.add(result)
        if on_file is not None:
            on_file(result)
    return tally


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    file_id: str
    codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Summary:
    imported: int
    skipped: int
    clean: int
    rejected: tuple[Rejection, ...]
    failed: tuple[FileResult, ...]
    # Imported by this run, still without a verdict when the wait ended.
    still_waiting: int
    # Imported by an earlier run (perhaps one that was killed) and still without a verdict.
    skipped_pending: int

    def as_dict(self) -> dict[str, object]:
        """The counts, for the last line of ``filegate import``: its keys are a stable format."""
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "clean": self.clean,
            "rejected": len(self.rejected),
            "failed": len(self.failed),
            "still_waiting": self.still_waiting,
            "skipped_pending": self.skipped_pending,
            "rejected_codes": self._rejected_codes(),
            "failed_reasons": self._failed_reasons(),
        }

    def _rejected_codes(self) -> dict[str, int]:
        return dict(Counter(code for r in self.rejected for code in r.codes))

    def _failed_reasons(self) -> dict[str, int]:
        return dict(Counter(str(f.failure) for f in self.failed))

    def lines(self) -> list[str]:
        """The summary for people, one fact a line."""
        lines = [f"imported {_count(self.imported, 'new file')} ({self.skipped} already imported)"]
        if self.skipped_pending:
            lines.append(f"  {self.skipped_pending} of those are still waiting for inspection")
        lines.append(f"clean: {self.clean}")
        lines.append(f"rejected: {len(self.rejected)}{_by_code(self._rejected_codes())}")
        lines += [f"  {r.source}: {', '.join(r.codes) or '-'}" for r in self.rejected[:LISTED]]
        lines += _more(len(self.rejected))
        lines.append(f"failed: {len(self.failed)}{_by_code(self._failed_reasons())}")
        lines += [f"  {f.source}: {f.message} ({f.failure})" for f in self.failed[:LISTED]]
        lines += _more(len(self.failed))
        if self.still_waiting:
            lines.append(
                f"still waiting for inspection: {self.still_waiting} "
                "(a running worker or server will finish them)"
            )
        return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _by_code(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{code}: {n}" for code, n in sorted(counts.items())) + ")"


def _more(total: int) -> list[str]:
    return [f"  ... and {total - LISTED} more (see the log)"] if total > LISTED else []


def await_verdicts(
    db: Database,
    tally: Tally,
    *,
    timeout: float,
    on_progress: Callable[[int, int], None] | None = None,
    poll: float = POLL_SECONDS,
) -> Summary:
    """Wait (at most ``timeout`` seconds) for this run's new files to leave quarantine.

    Files found already imported are neither waited for nor inspected again; the summary only
    counts those of them still in quarantine. A file deleted meanwhile stops being waited for.
    """
    waiting = set(tally.imported)
    decided: dict[str, FileState] = {}
    deadline = time.monotonic() + timeout
    while True:
        states = _states(db, waiting)
        for file_id in list(waiting):
            state = states.get(file_id)
            if state is not FileState.QUARANTINED:
                waiting.discard(file_id)
                if state is not None:
                    decided[file_id] = state
        if on_progress is not None:
            on_progress(len(tally.imported) - len(waiting), len(tally.imported))
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    rejected = [i for i, state in decided.items() if state is FileState.REJECTED]
    earlier = _states(db, tally.skipped_ids)
    return Summary(
        imported=len(tally.imported),
        skipped=tally.skipped,
        clean=sum(state is FileState.CLEAN for state in decided.values()),
        rejected=tuple(_rejections(db, tally, rejected)),
        failed=tuple(tally.failed),
        still_waiting=len(waiting),
        skipped_pending=sum(s is FileState.QUARANTINED for s in earlier.values()),
    )


def _states(db: Database, ids: Iterable[str]) -> dict[str, FileState]:
    pending = list(ids)
    states: dict[str, FileState] = {}
    for start in range(0, len(pending), STATE_BATCH):
        with db.session() as session:
            states.update(Files(session).states(pending[start : start + STATE_BATCH]))
    return states


def _rejections(db: Database, tally: Tally, file_ids: list[str]) -> Iterator[Rejection]:
    for file_id in sorted(file_ids, key=lambda i: tally.imported[i]):
        with db.session() as session:
            record = Files(session).get(file_id)
        codes = tuple(f.code for f in record.findings) if record else ()
        yield Rejection(tally.imported[file_id], file_id, codes)
