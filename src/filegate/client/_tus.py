"""A tus 1.0 upload that survives lost connections and lost processes (sans-IO core).

Create (``POST /v1/tus/``) once and remember the URL in the resume store; PATCH chunks with
``Upload-Checksum: sha256``; after any failed PATCH ask the server (HEAD) where it really is
and go on from there. A rerun finds the URL by the file's fingerprint and does the same.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from filegate.client._calls import Attempts, Session, api_error, call, transient
from filegate.client._effects import Failure, Reply, Request, Steps, blocking, send, sleep
from filegate.client.errors import ProtocolViolation, UploadGone
from filegate.client.models import Upload
from filegate.client.store import ResumeStore, fingerprint, store_key
from filegate.domain import is_valid_id

TUS_VERSION = "1.0.0"
TUS_BASE = "/v1/tus/"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# Catching the running digest up after a resume reads the file in blocks of this size.
HASH_BLOCK = 8 * 1024 * 1024
# tus metadata keys are tokens: no spaces or commas, which separate pairs and key from value.
_KEY = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

Progress = Callable[[int, int], None]
Target = str | os.PathLike[str] | BinaryIO


@dataclass(slots=True)
class Source:
    """The bytes to upload: a seekable binary file, its size, and its path if it has one."""

    file: BinaryIO
    name: str
    size: int
    path: Path | None
    owned: bool

    @classmethod
    def open(cls, target: Target, name: str | None = None) -> Source:
        if isinstance(target, str | os.PathLike):
            path = Path(target)
            file = path.open("rb")
            size = os.fstat(file.fileno()).st_size
            return cls(file, name or path.name, size, path, owned=True)
        if not target.seekable():
            raise ValueError("upload() needs a seekable binary file (it re-reads after failures)")
        size = target.seek(0, io.SEEK_END)
        given = name or os.path.basename(str(getattr(target, "name", "") or "")) or "upload.bin"
        return cls(target, given, size, None, owned=False)

    def read(self, offset: int, size: int) -> bytes:
        self.file.seek(offset)
        parts, left = [], size
        while left > 0:
            part = self.file.read(left)
            if not part:
                raise ValueError(f"{self.name} shrank while it was being uploaded")
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        if self.owned:
            self.file.close()


def metadata_header(name: str, profile: str | None, metadata: Mapping[str, str]) -> str:
    """``Upload-Metadata``: ``filename`` and ``profile`` (filegate reads both), then the rest."""
    pairs = {"filename": name, **({"profile": profile} if profile else {}), **metadata}
    for key in pairs:
        if not _KEY.fullmatch(key):
            raise ValueError(f"metadata key {key!r} is not a token (no spaces, commas or '=')")
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, **extra}


@dataclass(frozen=True, slots=True)
class UploadJob:
    """One upload's settings; ``store`` None means neither resume nor remember."""

    source: Source
    metadata_header: str
    chunk_size: int = DEFAULT_CHUNK_SIZE
    progress: Progress | None = None
    store: ResumeStore | None = None


def upload(session: Session, job: UploadJob) -> Steps[Upload]:
    """Resume the upload the store remembers for this file, or start one; send the rest."""
    key = None
    if job.store is not None and job.source.path is not None:
        mark = yield from blocking(partial(fingerprint, job.source.path))
        key = store_key(session.base_url, mark, job.metadata_header)
    url, offset = yield from _resume(session, job, key)
    resumed_from = offset
    if url is None:
        url = yield from _create(session, job)
        if key is not None and job.store is not None:
            label = str(job.source.path)
            yield from blocking(partial(job.store.put, key, url, label=label))
    sender = _Sender(session, job, url, offset)
    yield from sender.run()
    if key is not None and job.store is not None:
        yield from blocking(partial(job.store.forget, key))
    return Upload(
        file_id=_id_of(url),
        url=url,
        name=job.source.name,
        size=job.source.size,
        sha256=sender.digest.hash.hexdigest(),
        resumed_from=resumed_from,
        bytes_sent=sender.sent,
        retries=sender.attempts.total,
    )


def _resume(session: Session, job: UploadJob, key: str | None) -> Steps[tuple[str | None, int]]:
    """The remembered URL and the server's offset, or (None, 0) if there is nothing to resume."""
    if key is None or job.store is None:
        return None, 0
    url = yield from blocking(partial(job.store.get, key))
    if url is None:
        return None, 0
    reply = yield from call(session, Request("HEAD", url, tus_headers()), ok=(200, 404, 410))
    offset = reply.header("upload-offset")
    same = reply.header("upload-length") == str(job.source.size)
    if reply.status != 200 or not same or offset is None or not offset.isdigit():
        yield from blocking(partial(job.store.forget, key))  # gone or not ours: start over
        return None, 0
    return url, int(offset)


def _create(session: Session, job: UploadJob) -> Steps[str]:
    headers = tus_headers(
        **{"Upload-Length": str(job.source.size), "Upload-Metadata": job.metadata_header}
    )
    request = Request("POST", session.url(TUS_BASE), headers)
    reply = yield from call(session, request, ok=(201,))
    location = reply.header("location")
    if not location:
        raise ProtocolViolation("the server created an upload but sent no Location")
    # The token goes to base_url only: the Location names the upload, not where to send it.
    return session.url(TUS_BASE + _id_of(location))


def _id_of(url: str) -> str:
    upload_id = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    if not is_valid_id(upload_id):
        raise ProtocolViolation(f"{url!r} does not name a filegate upload")
    return upload_id


def _read_chunk(source: Source, offset: int, size: int) -> tuple[bytes, str]:
    data = source.read(offset, size)
    return data, base64.b64encode(hashlib.sha256(data).digest()).decode()


class _Digest:
    """The sha256 of the bytes the server has acknowledged, kept in step with its offset."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.upto = 0
        self.hash = hashlib.sha256()

    def catch_up(self, offset: int) -> Steps[None]:
        if self.upto > offset:  # the server went back: hash again from the start
            self.upto, self.hash = 0, hashlib.sha256()
        while self.upto < offset:
            size = min(HASH_BLOCK, offset - self.upto)
            data = yield from blocking(partial(self.source.read, self.upto, size))
            yield from blocking(partial(self.hash.update, data))
            self.upto += size

    def accepted(self, data: bytes) -> Steps[None]:
        yield from blocking(partial(self.hash.update, data))
        self.upto += len(data)


class _Sender:
    """PATCH from ``offset`` to the end; after a failure, HEAD and go on from the real offset."""

    def __init__(self, session: Session, job: UploadJob, url: str, offset: int) -> None:
        self.session = session
        self.job = job
        self.url = url
        self.offset = offset
        self.size = job.source.size
        self.digest = _Digest(job.source)
        self.attempts = Attempts(session.retry, f"upload of {job.source.name}")
        self.sent = 0
        self._in_flight = 0

    def run(self) -> Steps[None]:
        self._report(self.offset)
        while self.offset < self.size:
            yield from self.digest.catch_up(self.offset)
            size = min(self.job.chunk_size, self.size - self.offset)
            read = partial(_read_chunk, self.job.source, self.offset, size)
            chunk, checksum = yield from blocking(read)
            request = self._patch(chunk, checksum)
            self._in_flight = 0
            answer = yield from send(request)
            if isinstance(answer, Reply) and answer.status == 204:
                yield from self._accepted(answer, chunk)
            else:
                yield from self._recover(request, answer)
        yield from self.digest.catch_up(self.size)

    def _patch(self, chunk: bytes, checksum: str) -> Request:
        headers = tus_headers(
            **{
                "Upload-Offset": str(self.offset),
                "Upload-Checksum": f"sha256 {checksum}",
                "Content-Type": OFFSET_OCTET_STREAM,
            }
        )
        return Request("PATCH", self.url, headers, chunk, on_sent=self._on_sent)

    def _on_sent(self, count: int) -> None:
        self.sent += count
        self._in_flight += count
        self._report(self.offset + self._in_flight)

    def _report(self, sent: int) -> None:
        if self.job.progress is not None:
            self.job.progress(sent, self.size)

    def _accepted(self, reply: Reply, chunk: bytes) -> Steps[None]:
        new = _offset_of(reply)
        if not self.offset < new <= self.offset + len(chunk):
            raise ProtocolViolation(f"PATCH at {self.offset} of {len(chunk)} bytes -> {new}")
        yield from self.digest.accepted(chunk[: new - self.offset])
        self.offset = new
        self.attempts.succeeded()
        self._report(new)

    def _recover(self, request: Request, answer: Reply | Failure) -> Steps[None]:
        if isinstance(answer, Reply) and answer.status in (404, 410):
            raise UploadGone(f"{self.url} is gone; start the upload again") from api_error(
                request, answer
            )
        if isinstance(answer, Reply) and answer.status == 409:
            self.attempts.failed(request, answer)  # offset mismatch: re-sync now, no wait
        elif transient(answer):
            yield from sleep(self.attempts.failed(request, answer))
        else:
            assert isinstance(answer, Reply)
            raise api_error(request, answer)
        self.offset = yield from self._head()
        self._report(self.offset)

    def _head(self) -> Steps[int]:
        request = Request("HEAD", self.url, tus_headers())
        reply = yield from call(self.session, request, (200, 404, 410), self.attempts)
        if reply.status != 200:
            raise UploadGone(f"{self.url} is gone; start the upload again")
        return _offset_of(reply)


def _offset_of(reply: Reply) -> int:
    value = reply.header("upload-offset")
    if value is None or not value.isdigit():
        raise ProtocolViolation(f"expected Upload-Offset, got {value!r}")
    return int(value)
