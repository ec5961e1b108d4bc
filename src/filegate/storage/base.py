"""The storage seam: a small protocol every backend (local disk, later S3) implements.

Objects live in an area (quarantine or clean) under a key that filegate derives from the file
id; user input never becomes part of a storage name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

from filegate.domain import Area, is_valid_id
from filegate.errors import ErrorCode, FilegateError

READ_CHUNK = 1024 * 1024


def check_key(key: str) -> str:
    """Keys are file ids (ULIDs); anything else never reaches a backend."""
    if not is_valid_id(key):
        raise FilegateError(ErrorCode.STORAGE_ERROR, "storage keys must be file ids")
    return key


@runtime_checkable
class ObjectWriter(Protocol):
    """Receives an object's bytes; nothing is visible under the key until ``commit``."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None:
        """Make the bytes durable and visible under the key, atomically."""

    def abort(self) -> None:
        """Throw the bytes away; safe to call more than once and after a failed commit."""


@runtime_checkable
class ObjectAppender(Protocol):
    """Appends to an object in place (resumable uploads); bytes are durable only after sync."""

    def write(self, chunk: bytes) -> None: ...

    def sync(self) -> None:
        """Make every byte written so far durable."""

    def truncate(self, size: int) -> None:
        """Drop everything past ``size`` (a chunk that failed its checksum) and sync."""

    def store_whole(self, area: Area) -> bool:
        """With the object's last byte written: store every byte, durably, as an ordinary
        object under the key in ``area``, in one step, and leave the appended pieces as they
        are (deleting them is the caller's, once it has recorded where the bytes went). Only
        where that saves work: S3, when the bytes are all still in memory (less than a part);
        elsewhere False, having done nothing."""

    def close(self) -> None: ...


@runtime_checkable
class Storage(Protocol):
    # Whether ``read`` sees an appended object's bytes before ``seal`` (local disk does; S3's
    # multipart parts are unreadable until completed).
    reads_unfinished_uploads: bool

    def writer(self, area: Area, key: str) -> ObjectWriter:
        """A writer for a new object; an existing object under the key is replaced on commit."""

    def appender(self, area: Area, key: str, offset: int) -> ObjectAppender:
        """Open (creating if needed) an object to append at ``offset``; bytes past it are
        dropped first, since they were never acknowledged."""

    def seal(self, area: Area, key: str, size: int) -> None:
        """Make the first ``size`` appended bytes an ordinary object (readable, movable); a
        no-op when it is one already."""

    def concatenate(self, source: Area, parts: Sequence[str], target: Area, key: str) -> None:
        """One new object under ``key`` holding the parts' bytes in order; the parts stay.
        Server-side where the backend can (S3's part copy), else streamed in constant memory."""

    def read(self, area: Area, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` (``end`` None: to the end) in chunks. A missing
        object fails at the call, not at the first chunk, with ``missing`` in the error's
        extra (as ``size`` does)."""

    def size(self, area: Area, key: str) -> int:
        """The object's size; raises ``storage_error`` (``missing`` in its extra) if there is
        none."""

    def exists(self, area: Area, key: str) -> bool: ...

    def move(self, source: Area, target: Area, key: str) -> None:
        """Move an object between areas atomically; a repeat after success is a no-op."""

    def delete(self, area: Area, key: str) -> None:
        """Remove the object if present; deleting a missing object is not an error."""

    def keys(self, area: Area) -> Iterator[str]:
        """Every committed key in the area (for reconciliation)."""

    def modified(self, area: Area, key: str) -> float:
        """When the object was last written (Unix time); raises ``storage_error`` if missing.

        Reconciliation leaves young objects alone: one may be between its commit and its row.
        """

    def download_url(
        self, area: Area, key: str, *, content_type: str, content_disposition: str
    ) -> str | None:
        """A short-lived URL a client can fetch the object from directly, answered with these
        headers; None when the backend has no such thing (local disk)."""

    def local_path(self, area: Area, key: str) -> str | None:
        """A filesystem path for inspectors, or None when the backend has none."""

    def check(self) -> None:
        """Raise ``storage_error`` if the backend cannot be used right now (readiness)."""

    def public_access(self) -> list[str]:
        """What anyone without credentials can do with the stored objects (``read objects``,
        ...): empty, as it must be, for a backend nothing serves directly."""

    def cleanup_stale_temp(self, older_than_seconds: float) -> int:
        """Remove temp objects of writers that died (untouched for that long); how many."""


def concatenate_by_streaming(
    storage: Storage, source: Area, parts: Sequence[str], target: Area, key: str
) -> None:
    """``Storage.concatenate`` through this process: each part read and written in chunks."""
    writer = storage.writer(target, key)
    try:
        for part in parts:
            for chunk in storage.read(source, part):
                writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
