"""The benchmark's clients: one tus client for every server, and filegate's direct upload.

- ``TusClient.upload_stream``: ``POST`` create, then the whole body in one ``PATCH`` from a
  generator (never held in memory), as a streaming client sends it.
- ``TusClient.upload_chunked``: ``POST`` create, then one ``PATCH`` per chunk (8 MiB), as
  tus-js-client with ``chunkSize`` does.
- ``upload_concurrently``: many small uploads (``POST`` + ``PATCH``) from N concurrent clients
  (asyncio, one connection each), recording every request's latency and every error; for
  filegate, optionally also when each file's verdict could first be seen: one more client
  polls ``GET /v1/files/{id}`` for the oldest upload without a verdict, every 5 ms.
- ``upload_each_to_verdict``: uploads one after another, each waiting for its verdict.
- ``post_file``: filegate's ``POST /v1/files``, a raw or multipart body streamed from a generator.

The payload is a repeated block of printable text (filegate's default profile takes it as a
``.txt``); its sha256 is computed once per size, outside any timing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urljoin

import httpx2 as httpx
import uvloop

MIB = 1 << 20
TUS_VERSION = "1.0.0"
FILENAME = "bench.txt"
FILETYPE = "text/plain"
# Long enough for a 4 GiB body on a slow disk; a stuck server still fails the run.
TIMEOUT = httpx.Timeout(600.0, connect=10.0)


class UploadError(RuntimeError):
    """A server answered something other than the protocol's success."""


def _text_block() -> bytes:
    line = b"filegate benchmark payload, a repeated block of printable text: line %07d\n"
    lines = []
    size = 0
    number = 0
    while size < MIB:
        text = line % number
        lines.append(text)
        size += len(text)
        number += 1
    return b"".join(lines)[: MIB - 1] + b"\n"


BLOCK = _text_block()


def chunks(size: int) -> Iterator[bytes]:
    """``size`` bytes of the payload, one block at a time."""
    whole, rest = divmod(size, len(BLOCK))
    for _ in range(whole):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


def body(size: int) -> bytes:
    """The first ``size`` bytes of the payload, as one bytes object (small sizes only)."""
    return b"".join(chunks(size))


@cache
def sha256_of(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def _metadata() -> str:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode("ascii")

    return f"filename {b64(FILENAME)},filetype {b64(FILETYPE)}"


METADATA = _metadata()


def _expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        text = response.text[:300]
        raise UploadError(f"{what} answered {response.status_code}, not {status}: {text}")


def _create_headers(length: int) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Length": str(length),
        "Upload-Metadata": METADATA,
        "Content-Length": "0",
    }


def _patch_headers(offset: int, length: int) -> dict[str, str]:
    return {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(length),
    }


def upload_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class TusClient:
    """A tus 1.0 client on one keep-alive connection."""

    def __init__(self, base_url: str, tus_path: str, headers: dict[str, str]) -> None:
        self.endpoint = base_url + tus_path
        self.client = httpx.Client(headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> TusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, length: int) -> str:
        response = self.client.post(self.endpoint, headers=_create_headers(length))
        _expect(response, 201, "tus POST")
        return urljoin(self.endpoint, response.headers["location"])

    def patch(self, url: str, offset: int, content: bytes | Iterator[bytes], length: int) -> int:
        response = self.client.patch(url, content=content, headers=_patch_headers(offset, length))
        _expect(response, 204, "tus PATCH")
        new_offset = int(response.headers["upload-offset"])
        if new_offset != offset + length:
            raise UploadError(f"tus PATCH left the offset at {new_offset}, not {offset + length}")
        return new_offset

    def upload_stream(self, size: int) -> str:
        """One upload, its whole body in one PATCH; returns the upload id."""
        url = self.create(size)
        self.patch(url, 0, chunks(size), size)
        return upload_id_of(url)

    def upload_chunked(self, size: int, chunk_size: int) -> str:
        """One upload in PATCHes of ``chunk_size`` (a multiple of the payload block)."""
        if chunk_size % len(BLOCK):
            raise ValueError(f"chunk size must be a multiple of {len(BLOCK)} bytes")
        chunk = body(chunk_size)
        url = self.create(size)
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            offset = self.patch(
                url, offset, chunk if length == chunk_size else chunk[:length], length
            )
        return upload_id_of(url)


# --- many small uploads at once, and filegate's verdicts --------------------------------------

# Polling filegate for verdicts: one GET at a time, for the oldest upload without a verdict.
VERDICT_POLL = 0.005
VERDICT_TIMEOUT = 300.0
FILES_PATH = "/v1/files/"


@dataclass
class ConcurrentResult:
    """What the clients saw. Times are ``time.perf_counter()`` values: ``started`` when the
    first request went out, per upload id when its ``PATCH`` was answered (``completed_at``)
    and, when verdicts were awaited, when a ``GET`` first showed it decided (``verdict_at``,
    with the state in ``verdicts``). ``ids`` are in the order the uploads completed."""

    seconds: float = 0.0
    started: float = 0.0
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    upload_latencies: list[float] = field(default_factory=list)
    request_latencies: list[float] = field(default_factory=list)
    completed_at: dict[str, float] = field(default_factory=dict)
    verdict_at: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    verdict_polls: int = 0


async def _one_upload(
    client: httpx.AsyncClient, endpoint: str, content: bytes, result: ConcurrentResult
) -> None:
    started = time.perf_counter()
    response = await client.post(endpoint, headers=_create_headers(len(content)))
    created = time.perf_counter()
    _expect(response, 201, "tus POST")
    url = urljoin(endpoint, response.headers["location"])
    response = await client.patch(url, content=content, headers=_patch_headers(0, len(content)))
    done = time.perf_counter()
    _expect(response, 204, "tus PATCH")
    result.request_latencies += [created - started, done - created]
    result.upload_latencies.append(done - started)
    upload_id = upload_id_of(url)
    result.ids.append(upload_id)
    result.completed_at[upload_id] = done


async def _worker(
    client: httpx.AsyncClient,
    endpoint: str,
    content: bytes,
    queue: asyncio.Queue[int],
    result: ConcurrentResult,
) -> None:
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        try:
            await _one_upload(client, endpoint, content, result)
        except (httpx.HTTPError, UploadError, KeyError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")


async def _await_verdict(
    client: httpx.AsyncClient, file_id: str, result: ConcurrentResult, deadline: float
) -> None:
    """Poll one file until it leaves quarantine; note when a GET first showed it."""
    while True:
        response = await client.get(FILES_PATH + file_id)
        seen = time.perf_counter()
        result.verdict_polls += 1
        _expect(response, 200, f"GET {FILES_PATH}{file_id}")
        state: str = response.json()["state"]
        if state != "quarantined":
            result.verdict_at[file_id] = seen
            result.verdicts[file_id] = state
            return
        if seen > deadline:
            raise UploadError(f"{file_id} still quarantined after {VERDICT_TIMEOUT:g}s")
        await asyncio.sleep(VERDICT_POLL)


async def _watch_verdicts(
    client: httpx.AsyncClient, result: ConcurrentResult, uploads_done: asyncio.Event
) -> None:
    """Every completed upload's verdict, oldest first, until the uploads are done and every
    one has its verdict: one GET in flight at a time, so the polling stays light."""
    deadline = time.perf_counter() + VERDICT_TIMEOUT
    watched = 0
    while watched < len(result.ids) or not uploads_done.is_set():
        if watched == len(result.ids):
            await asyncio.sleep(VERDICT_POLL)
            continue
        await _await_verdict(client, result.ids[watched], result, deadline)
        watched += 1


def _filegate_client(base_url: str, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT)


async def _upload_many(
    base_url: str,
    tus_path: str,
    headers: dict[str, str],
    *,
    count: int,
    size: int,
    concurrency: int,
    verdicts: bool,
) -> ConcurrentResult:
    content = body(size)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    result = ConcurrentResult()
    endpoint = base_url + tus_path
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(headers=headers, timeout=TIMEOUT, limits=limits) as client,
        _filegate_client(base_url, headers) as poller,
    ):
        uploads_done = asyncio.Event()
        result.started = time.perf_counter()
        watcher = (
            asyncio.create_task(_watch_verdicts(poller, result, uploads_done)) if verdicts else None
        )
        workers = [_worker(client, endpoint, content, queue, result) for _ in range(concurrency)]
        await asyncio.gather(*workers)
        result.seconds = time.perf_counter() - result.started
        uploads_done.set()
        if watcher is not None:
            await watcher
    return result


def upload_concurrently(
    base_url: str,
    tus_path: str,
    headers: dict[str, str],
    *,
    count: int,
    size: int,
    concurrency: int,
    verdicts: bool = False,
) -> ConcurrentResult:
    """``count`` uploads of ``size`` bytes, ``concurrency`` at a time; with ``verdicts`` (a
    filegate server), also each file's verdict, polled while the uploads go on."""
    return uvloop.run(
        _upload_many(
            base_url,
            tus_path,
            headers,
            count=count,
            size=size,
            concurrency=concurrency,
            verdicts=verdicts,
        )
    )


async def _each_to_verdict(
    base_url: str, tus_path: str, headers: dict[str, str], count: int, size: int
) -> ConcurrentResult:
    content = body(size)
    result = ConcurrentResult()
    async with _filegate_client(base_url, headers) as client:
        result.started = time.perf_counter()
        for _ in range(count):
            await _one_upload(client, base_url + tus_path, content, result)
            deadline = time.perf_counter() + VERDICT_TIMEOUT
            await _await_verdict(client, result.ids[-1], result, deadline)
        result.seconds = time.perf_counter() - result.started
    return result


def upload_each_to_verdict(
    base_url: str, tus_path: str, headers: dict[str, str], *, count: int, size: int
) -> ConcurrentResult:
    """``count`` uploads of ``size`` bytes to filegate, one after another, each waiting for
    its verdict before the next starts (an idle server)."""
    return uvloop.run(_each_to_verdict(base_url, tus_path, headers, count, size))


# --- filegate's direct upload --------------------------------------------------------------


def _multipart(size: int, boundary: str) -> tuple[Iterator[bytes], int]:
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{FILENAME}"\r\n'
        f"Content-Type: {FILETYPE}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def parts() -> Iterator[bytes]:
        yield head
        yield from chunks(size)
        yield tail

    return parts(), len(head) + size + len(tail)


def post_file(base_url: str, headers: dict[str, str], size: int, multipart: bool) -> str:
    """``POST /v1/files`` with a streamed body; returns the new file's id."""
    if multipart:
        boundary = uuid.uuid4().hex
        content, length = _multipart(size, boundary)
        extra = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    else:
        content, length = chunks(size), size
        extra = {
            "Content-Type": FILETYPE,
            "Content-Disposition": f'attachment; filename="{FILENAME}"',
        }
    with httpx.Client(headers=headers, timeout=TIMEOUT) as client:
        response = client.post(
            base_url + "/v1/files",
            content=content,
            headers={**extra, "Content-Length": str(length)},
        )
    _expect(response, 202, "POST /v1/files")
    file_id: str = response.json()["id"]
    return file_id
