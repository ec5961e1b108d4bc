"""The resume store: which tus upload URL a local file was going to, across runs.

One small JSON file (default ``~/.cache/filegate/uploads.json``), keyed by a digest of the
server's URL, the file's fingerprint and the upload's metadata. Every change is a
read-modify-write under an exclusive lock on a sibling ``.lock`` file, written to a temp file
in the same directory, fsynced and ``os.replace``d: a crash or a second process never leaves
half a file, and two processes never lose each other's entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: os.replace still keeps the file whole; last writer wins
    fcntl = None  # type: ignore[assignment]

STORE_ENV = "FILEGATE_RESUME_STORE"
# The fingerprint reads this much of the file: enough to tell rewritten files apart cheaply.
HEAD_BYTES = 1024 * 1024
# Servers expire unfinished uploads after a day by default; a month-old entry is only clutter.
MAX_AGE_SECONDS = 30 * 24 * 3600
VERSION = 1


def default_path() -> Path:
    """``$FILEGATE_RESUME_STORE``, else ``uploads.json`` in the user's cache directory."""
    if override := os.environ.get(STORE_ENV):
        return Path(override)
    if sys.platform == "win32" and (local := os.environ.get("LOCALAPPDATA")):
        return Path(local) / "filegate" / "uploads.json"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "filegate" / "uploads.json"


def fingerprint(path: Path) -> str:
    """Absolute path, size, mtime in ns and the sha256 of the first MiB: a file edited in
    place, replaced, truncated or grown gets a new fingerprint, so it is never resumed."""
    resolved = path.resolve()
    with resolved.open("rb") as file:
        info = os.fstat(file.fileno())
        head = hashlib.sha256(file.read(HEAD_BYTES)).hexdigest()
    return f"{resolved}\0{info.st_size}\0{info.st_mtime_ns}\0{head}"


def store_key(server: str, file_fingerprint: str, metadata_header: str) -> str:
    """Another server, another file or other metadata (profile, name): another upload."""
    material = json.dumps([server.rstrip("/"), file_fingerprint, metadata_header])
    return hashlib.sha256(material.encode()).hexdigest()


class ResumeStore:
    """Upload URLs by key; safe for several processes on one machine.

    >>> store = ResumeStore(Path("/tmp/uploads.json"))
    >>> store.put("k", "https://files.example/v1/tus/01J...", label="big.iso")
    >>> store.get("k")
    'https://files.example/v1/tus/01J...'
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        return str(entry["url"]) if isinstance(entry, dict) and "url" in entry else None

    def put(self, key: str, url: str, *, label: str = "") -> None:
        entry = {"url": url, "label": label, "saved_at": int(time.time())}
        self._update(lambda entries: entries.__setitem__(key, entry))

    def forget(self, key: str) -> None:
        self._update(lambda entries: entries.pop(key, None))

    def entries(self) -> dict[str, dict[str, Any]]:
        """Every entry, for inspection (``label`` is the file's path)."""
        return self._read()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or unreadable: nothing to resume, which is always safe
        uploads = data.get("uploads") if isinstance(data, dict) else None
        return uploads if isinstance(uploads, dict) else {}

    def _update(self, change: Callable[[dict[str, dict[str, Any]]], object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            entries = self._read()
            change(entries)
            oldest = time.time() - MAX_AGE_SECONDS
            kept = {k: v for k, v in entries.items() if v.get("saved_at", 0) >= oldest}
            self._write({"version": VERSION, "uploads": kept})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, data: dict[str, Any]) -> None:
        fd, temp = tempfile.mkstemp(prefix=".uploads-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
