"""Local-disk storage: ``<root>/<area>/<key[-2:]>/<key>``, written via temp file and rename.

Temp files live in ``<root>/<area>/.tmp`` so that the rename into place never crosses a
filesystem and is therefore atomic. Every change to a directory is fsynced, so a committed object
survives a power cut. Exception messages never carry paths; the area and key are in ``extra``.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from filegate.domain import Area, is_valid_id
from filegate.errors import ErrorCode, FilegateError
from filegate.storage.base import READ_CHUNK, check_key, concatenate_by_streaming

# Coalesces the small chunks a multipart parser hands over into few write syscalls; chunks larger
# than this bypass the buffer. Memory cost is per concurrent upload.
WRITE_BUFFER = 256 * 1024
TMP_DIR = ".tmp"
DIR_MODE = 0o700
SHARD_CHARS = 2


def _fail(message: str, **extra: object) -> FilegateError:
    return FilegateError(ErrorCode.STORAGE_ERROR, message, **extra)


@contextmanager
def _os_errors(message: str, **extra: object) -> Iterator[None]:
    """Turn an OSError into ``storage_error``; its text names a path, so only the reason is kept."""
    try:
        yield
    except OSError as exc:
        raise _fail(message, reason=exc.strerror, errno=exc.errno, **extra) from None


def _not_found(area: Area, key: str) -> FilegateError:
    return _fail(f"object not found in {area}", area=str(area), key=key, missing=True)


def _fsync_dir(path: Path) -> None:
    """Make the entries of a directory (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir(path: Path) -> None:
    """Create a shard directory and make its own entry in the area directory durable."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return
    _fsync_dir(path.parent)


def _regular_file_size(path: Path) -> int | None:
    with _os_errors("cannot inspect object"):
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _probe(directory: Path) -> None:
    """Prove the directory takes a durable write, as an upload would need."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".probe.")
    try:
        os.write(fd, b"probe")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(name)


def _list_dir(path: Path) -> list[os.DirEntry[str]]:
    # Listed eagerly so no directory handle stays open while a caller holds the generator.
    with os.scandir(path) as entries:
        return list(entries)


def _is_shard(entry: os.DirEntry[str]) -> bool:
    return len(entry.name) == SHARD_CHARS and entry.is_dir(follow_symlinks=False)


def _shard_keys(shard: os.DirEntry[str]) -> list[str]:
    return [
        entry.name
        for entry in _list_dir(Path(shard.path))
        if entry.is_file(follow_symlinks=False)
        and is_valid_id(entry.name)
        and entry.name.endswith(shard.name)
    ]


def _is_stale(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff
    except FileNotFoundError:  # its writer finished meanwhile
        return False


def _remove_stale(directory: Path, cutoff: float) -> int:
    removed = 0
    for entry in _list_dir(directory):
        if _is_stale(entry, cutoff):
            with suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


def _stream(path: Path, area: Area, key: str, start: int, stop: int) -> Iterator[bytes]:
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise _not_found(area, key) from None
    with file:
        file.seek(start)
        remaining = stop - start
        while remaining > 0:
            with _os_errors(f"cannot read object from {area}", area=str(area), key=key):
                chunk = file.read(min(READ_CHUNK, remaining))
            if not chunk:
                return  # the object was replaced by a shorter one while we streamed
            remaining -= len(chunk)
            yield chunk


class LocalWriter:
    """Writes one object into a temp file; ``commit`` renames it into place."""

    def __init__(self, tmp_dir: Path, final: Path, area: Area, key: str) -> None:
        self._final = final
        self._extra: dict[str, object] = {"area": str(area), "key": key}
        self._committed = False
        with _os_errors(f"cannot create a temp file in {area}", **self._extra):
            fd, self._tmp = tempfile.mkstemp(dir=tmp_dir, prefix=key + ".")
        self._file: BinaryIO | None = open(fd, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise _fail("writer is already closed", **self._extra)
        # Inline rather than _os_errors: this runs once per chunk of every upload.
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise _fail("cannot write object", reason=exc.strerror, **self._extra) from None

    def commit(self) -> None:
        file = self._take_file()
        with _os_errors("cannot commit object", **self._extra):
            try:
                file.flush()
                os.fsync(file.fileno())
            finally:
                file.close()
            _ensure_dir(self._final.parent)
            os.replace(self._tmp, self._final)
            self._committed = True
            _fsync_dir(self._final.parent)

    def abort(self) -> None:
        """Drop the temp file. After a successful rename there is nothing left to drop."""
        if self._file is not None:
            with suppress(OSError):
                self._file.close()
            self._file = None
        if not self._committed:
            with suppress(FileNotFoundError):
                os.unlink(self._tmp)

    def _take_file(self) -> BinaryIO:
        if self._file is None:
            raise _fail("writer is already closed", **self._extra)
        file, self._file = self._file, None
        return file


def _open_or_create(path: Path) -> tuple[int, bool]:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, os.O_RDWR), False


class LocalAppender:
    """Appends to one object in place; ``sync`` makes the written bytes durable."""

    def __init__(self, path: Path, offset: int, area: Area, key: str) -> None:
        self._extra: dict[str, object] = {"area": str(area), "key": key}
        with _os_errors("cannot open object for appending", **self._extra):
            _ensure_dir(path.parent)
            fd, created = _open_or_create(path)
            try:
                if os.fstat(fd).st_size < offset:
                    raise _fail("object is shorter than the offset", offset=offset, **self._extra)
                if os.fstat(fd).st_size > offset:
                    os.ftruncate(fd, offset)
                os.lseek(fd, offset, os.SEEK_SET)
            except BaseException:
                os.close(fd)
                raise
            if created:  # only a new entry needs the directory made durable
                _fsync_dir(path.parent)
        self._file: BinaryIO = open(fd, "wb", buffering=WRITE_BUFFER)  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise _fail("cannot write object", reason=exc.strerror, **self._extra) from None

    def sync(self) -> None:
        with _os_errors("cannot sync object", **self._extra):
            self._file.flush()
            os.fsync(self._file.fileno())

    def truncate(self, size: int) -> None:
        with _os_errors("cannot truncate object", **self._extra):
            self._file.flush()
            self._file.truncate(size)
            self._file.seek(size)
            os.fsync(self._file.fileno())

    def store_whole(self, area: Area) -> bool:
        return False  # sync, then a rename at seal: the bytes are never written twice

    def close(self) -> None:
        with suppress(OSError):
            self._file.close()


class LocalStorage:
    """The Storage protocol on a local directory tree."""

    reads_unfinished_uploads = True

    def __init__(self, root: Path) -> None:
        with _os_errors("cannot prepare the storage root"):
            os.makedirs(root, DIR_MODE, exist_ok=True)
            self._root = Path(root).resolve()
            self._areas = {area: self._prepare_area(area) for area in Area}

    def writer(self, area: Area, key: str) -> LocalWriter:
        final = self._object_path(area, key)
        return LocalWriter(self._tmp_dir(area), final, area, key)

    def appender(self, area: Area, key: str, offset: int) -> LocalAppender:
        if offset < 0:
            raise _fail("invalid offset", offset=offset)
        return LocalAppender(self._object_path(area, key), offset, area, key)

    def seal(self, area: Area, key: str, size: int) -> None:
        """An appended file is an ordinary one already; an upload that never saw a byte gets
        its empty file here."""
        if not self.exists(area, key):
            self.appender(area, key, 0).close()
        if self.size(area, key) != size:
            raise _fail("the object does not have the sealed size", size=size, area=str(area))

    def concatenate(self, source: Area, parts: Sequence[str], target: Area, key: str) -> None:
        concatenate_by_streaming(self, source, parts, target, key)

    def read(self, area: Area, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream ``[start, end)``, clipped to the object; a missing object fails here, eagerly."""
        path = self._object_path(area, key)
        if start < 0 or (end is not None and end < start):
            raise _fail("invalid byte range", start=start, end=end)
        size = self.size(area, key)
        stop = size if end is None else min(end, size)
        return _stream(path, area, key, start, max(start, stop))

    def size(self, area: Area, key: str) -> int:
        size = _regular_file_size(self._object_path(area, key))
        if size is None:
            raise _not_found(area, key)
        return size

    def exists(self, area: Area, key: str) -> bool:
        return _regular_file_size(self._object_path(area, key)) is not None

    def move(self, source: Area, target: Area, key: str) -> None:
        origin = self._object_path(source, key)
        destination = self._object_path(target, key)
        with _os_errors(f"cannot move object from {source} to {target}", key=key):
            _ensure_dir(destination.parent)
            try:
                os.replace(origin, destination)
            except FileNotFoundError:
                if self.exists(target, key):
                    return  # an earlier move already succeeded
                raise _not_found(source, key) from None
            _fsync_dir(destination.parent)
            _fsync_dir(origin.parent)

    def delete(self, area: Area, key: str) -> None:
        path = self._object_path(area, key)
        with _os_errors(f"cannot delete object from {area}", area=str(area), key=key):
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                return
            # Otherwise a purged (possibly malicious) file could reappear after a crash.
            _fsync_dir(path.parent)

    def keys(self, area: Area) -> Iterator[str]:
        area_dir = self._area_dir(area)
        with _os_errors(f"cannot list {area}", area=str(area)):
            shards = [e for e in _list_dir(area_dir) if _is_shard(e)]
        for shard in shards:
            with _os_errors(f"cannot list {area}", area=str(area)):
                names = _shard_keys(shard)
            yield from names

    def modified(self, area: Area, key: str) -> float:
        try:
            return os.stat(self._object_path(area, key), follow_symlinks=False).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            raise _not_found(area, key) from None

    def download_url(
        self, area: Area, key: str, *, content_type: str, content_disposition: str
    ) -> str | None:
        check_key(key)
        return None

    def local_path(self, area: Area, key: str) -> str | None:
        path = self._object_path(area, key)
        return str(path) if _regular_file_size(path) is not None else None

    def check(self) -> None:
        for area in Area:
            with _os_errors(f"{area} storage is not writable", area=str(area)):
                if not self._area_dir(area).is_dir():
                    raise _fail(f"{area} storage directory is missing", area=str(area))
                _probe(self._tmp_dir(area))

    def public_access(self) -> list[str]:
        return []  # only filegate reads these files; their modes are private (0600)

    def cleanup_stale_temp(self, older_than_seconds: float) -> int:
        """Remove temp files untouched for longer than that; pick more than the upload timeout."""
        cutoff = time.time() - older_than_seconds
        with _os_errors("cannot clean up temp files"):
            return sum(_remove_stale(self._tmp_dir(area), cutoff) for area in Area)

    def _prepare_area(self, area: Area) -> Path:
        area_dir = self._root / area.value
        os.makedirs(area_dir, DIR_MODE, exist_ok=True)
        os.makedirs(area_dir / TMP_DIR, DIR_MODE, exist_ok=True)
        return area_dir

    def _area_dir(self, area: Area) -> Path:
        try:
            return self._areas[area]
        except KeyError:
            raise _fail("unknown storage area") from None

    def _tmp_dir(self, area: Area) -> Path:
        return self._area_dir(area) / TMP_DIR

    def _object_path(self, area: Area, key: str) -> Path:
        check_key(key)
        shard = self._area_dir(area) / key[-SHARD_CHARS:]
        path = shard / key
        # Defence in depth: a symlinked shard or object could lead outside the area, and
        # filegate never makes links, so any is refused. Two lstat calls: resolve() walked
        # every component of the path, several times per upload (docs/benchmarks.md).
        if _is_link(shard) or _is_link(path):
            raise _fail(f"object path escapes the {area} area", area=str(area), key=key)
        return path


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:  # missing (not made yet), or under a file: opening it fails clearly
        return False
