"""The rest of the API the client speaks: verdicts, downloads, share links, upload tokens."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from filegate.client._calls import Attempts, Session, api_error, call, json_request, transient
from filegate.client._effects import Reply, Request, Steps, blocking, sleep, stream
from filegate.client.errors import IntegrityError, VerdictTimeout
from filegate.client.models import File, Link, UploadToken

# Inspection takes from milliseconds (text) to minutes (a large archive): poll quickly at
# first, then settle at a pace that costs the server nothing.
FIRST_POLL = 0.2
MAX_POLL = 2.0
_SHA256_ETAG = re.compile(r'"([0-9a-f]{64})"')
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _file_path(file_id: str) -> str:
    return f"/v1/files/{quote(file_id, safe='')}"


def get_file(session: Session, file_id: str) -> Steps[File]:
    reply = yield from call(session, json_request("GET", session.url(_file_path(file_id))))
    return File.from_json(reply.json())


def wait_for_verdict(
    session: Session,
    file_id: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> Steps[File]:
    """Poll the file until it is ``clean`` or ``rejected``; ``VerdictTimeout`` after ``timeout``."""
    deadline = clock() + timeout
    interval = FIRST_POLL
    while True:
        file = yield from get_file(session, file_id)
        if file.decided:
            return file
        if clock() + interval > deadline:
            raise VerdictTimeout(file, timeout)
        yield from sleep(interval)
        interval = min(interval * 1.5, MAX_POLL)


def create_link(session: Session, file_id: str, body: Mapping[str, Any]) -> Steps[Link]:
    url = session.url(_file_path(file_id) + "/links")
    reply = yield from call(session, json_request("POST", url, body), ok=(201,))
    return Link.from_json(reply.json())


def create_upload_token(session: Session, body: Mapping[str, Any]) -> Steps[UploadToken]:
    url = session.url("/v1/upload-tokens")
    reply = yield from call(session, json_request("POST", url, body), ok=(201,))
    return UploadToken.from_json(reply.json())


class _Download:
    """A temp file beside ``dest`` that takes a 200 (from scratch) or a 206 (appended)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        self.temp = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.size = 0
        self.total: int | None = None
        self.etag: str | None = None

    def begin(self, reply: Reply) -> None:
        if reply.status == 206:
            match = _CONTENT_RANGE.fullmatch(reply.header("content-range") or "")
            if match is None or int(match[1]) != self.size:
                raise IntegrityError(f"asked for bytes {self.size}- and got {match and match[0]}")
            self.total = int(match[3])
            return
        self.etag = reply.header("etag")
        self.file.seek(0)
        self.file.truncate()
        self.hash, self.size = hashlib.sha256(), 0
        length = reply.header("content-length")
        self.total = int(length) if length and length.isdigit() else None

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def finish(self, etag: str | None) -> Path:
        if self.total is not None and self.size != self.total:
            raise IntegrityError(f"got {self.size} of {self.total} bytes")
        match = _SHA256_ETAG.fullmatch(etag or "")
        if match and match[1] != self.hash.hexdigest():  # filegate's ETag is the sha256
            raise IntegrityError(f"downloaded bytes hash to {self.hash.hexdigest()}, not {etag}")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.dest)
        return self.dest

    def discard(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp.unlink()


def download(session: Session, file_id: str, dest: Path) -> Steps[Path]:
    """Stream the clean file to ``dest`` atomically; a cut resumes with Range and If-Range."""
    target = yield from blocking(partial(_Download, dest))
    try:
        yield from _fetch(session, session.url(_file_path(file_id) + "/content"), target)
        return (yield from blocking(partial(target.finish, target.etag)))
    finally:
        if target.temp.exists():
            target.discard()


def _fetch(session: Session, url: str, target: _Download) -> Steps[None]:
    attempts = Attempts(session.retry, f"download of {url}")
    while True:
        headers = {}
        if target.size and target.etag:  # only the same bytes may continue the same file
            headers = {"Range": f"bytes={target.size}-", "If-Range": target.etag}
        request = Request("GET", url, headers)
        answer = yield from stream(request, target)
        if isinstance(answer, Reply) and answer.status in (200, 206):
            return
        if not transient(answer):
            assert isinstance(answer, Reply)
            raise api_error(request, answer)
        yield from sleep(attempts.failed(request, answer))
