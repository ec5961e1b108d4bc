"""Resumable-upload ingest: a PATCH body on its way into the upload's object.

Batches the bytes, hashes them (the file's sha256 and the request's Upload-Checksum) and writes
them off the event loop, makes them durable and only then advances the upload's offset; drops
a request's bytes when they are refused. It speaks to the storage seam, never to HTTP:
``web/tus.py`` hands it the body as chunks. (The split tusd makes at ``WriteChunk``.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from filegate.blocking import run_blocking
from filegate.domain import Area, UploadRecord
from filegate.errors import ErrorCode, FilegateError
from filegate.services import tus
from filegate.services.locks import Holder
from filegate.services.runtime import Runtime
from filegate.services.uploads import too_large
from filegate.tus.headers import Checksum

# Progress of a long PATCH is made durable (fsync + offset) every this many bytes, so a
# crash costs the client at most this much re-sending.
SYNC_EVERY = 64 * 1024 * 1024
# Hand bytes to the hashing/writing thread in batches this big: big enough that the thread
# hop is noise, small enough that memory per upload stays flat.
BATCH_BYTES = 1024 * 1024
# Running sha256 states kept for uploads continuing in this process; others are re-hashed.
DIGEST_CACHE_SIZE = 1024


class _Hash(Protocol):
    def update(self, data: bytes | bytearray, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | bytearray) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def checksum_hasher(algorithm: str) -> _Hash:
    """A hasher for a tus Upload-Checksum algorithm (sha1, sha256, md5, crc32, ...)."""
    return _Crc32() if algorithm == "crc32" else hashlib.new(algorithm)


class DigestCache:
    """The running sha256 of uploads continuing in this process, by (upload, offset); an
    upload continuing elsewhere is re-hashed from its bytes instead."""

    def __init__(self, size: int = DIGEST_CACHE_SIZE) -> None:
        self._size = size
        self._digests: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> Any:
        entry = self._digests.pop(upload_id, None)
        return entry[1] if entry is not None and entry[0] == offset else None

    def keep(self, upload_id: str, offset: int, digest: Any) -> None:
        self._digests[upload_id] = (offset, digest)
        while len(self._digests) > self._size:
            self._digests.popitem(last=False)


class PatchReceiver:
    """The body of one PATCH on its way into the upload's object."""

    def __init__(
        self,
        runtime: Runtime,
        digests: DigestCache,
        record: UploadRecord,
        checksum: Checksum | None,
    ) -> None:
        self.runtime = runtime
        self.digests = digests
        self.record = record
        self.start = record.offset
        self.written = record.offset
        self.checksum = checksum
        self.check_hash = checksum_hasher(checksum.algorithm) if checksum else None
        policy = runtime.settings.profile(record.profile)
        self.limit = record.length if record.length is not None else policy.max_size
        self.max_size = policy.max_size
        self.appender: Any = None
        self.digest: Any = None
        self.start_digest: Any = None
        # Bytes wait here until a batch is worth a thread hop; one batch is hashed and written
        # off the event loop while the next one arrives (hashlib and write release the GIL).
        self._batch = bytearray()
        self._in_flight: asyncio.Future[None] | None = None
        self.completed = False

    async def open(self) -> None:
        cached = self.digests.take(self.record.id, self.start)
        self.appender, self.digest = await run_blocking(self._open, cached)
        self.start_digest = self.digest.copy() if self.checksum and self.digest else None

    def _open(self, cached: Any) -> tuple[Any, Any]:
        """In a thread: the appender, and the digest of the bytes before ``start`` (one hop)."""
        storage = self.runtime.storage
        appender = storage.appender(Area.UPLOADS, self.record.id, self.start)
        if cached is not None:
            return appender, cached
        try:
            return appender, tus.rehash(storage, self.record.id, self.start)
        except BaseException:
            appender.close()
            raise

    async def write(self, chunk: bytes) -> None:
        if self.written + len(chunk) > self.limit:
            raise too_large(self.max_size if self.record.length is None else self.limit)
        self._batch += chunk
        self.written += len(chunk)
        # Strictly more: a body of exactly one batch is written by ``persist``, in its hop.
        if len(self._batch) > BATCH_BYTES:
            await self._hand_off()

    async def _hand_off(self) -> None:
        await self._wait_in_flight()
        batch, self._batch = self._batch, bytearray()
        if batch:
            loop = asyncio.get_running_loop()
            self._in_flight = loop.run_in_executor(None, self._absorb, batch)

    async def _wait_in_flight(self) -> None:
        # Shielded: a cancelled request (a takeover) must still know when the thread is done
        # before it fsyncs and reports an offset.
        if self._in_flight is not None:
            await asyncio.shield(self._in_flight)
            self._in_flight = None

    def _absorb(self, batch: bytearray) -> None:
        self.appender.write(batch)
        if self.digest is not None:
            self.digest.update(batch)
        if self.check_hash is not None:
            self.check_hash.update(batch)

    async def drain(self) -> None:
        """Wait until every byte handed to ``write`` is in the file and the hashes."""
        await self._hand_off()
        await self._wait_in_flight()

    async def persist(self, *, finish: bool = False) -> None:
        """Write the last batch, fsync, then advance the offset to what was written.

        With ``finish``, an upload whose last byte this is also becomes a quarantined file
        (``completed``). All of it is one thread hop: a small upload's PATCH pays for hops
        (thread wake-ups and GIL hand-overs) more than for its bytes.
        """
        await self._wait_in_flight()
        batch, self._batch = self._batch, bytearray()
        if self.written == self.record.offset:
            return
        renewed = dataclasses.replace(self.record, expires_at=tus.expiry(self.runtime.settings))
        complete = finish and self.written == self.record.length
        await run_blocking(self._commit, batch, renewed, complete)
        self.record = dataclasses.replace(renewed, offset=self.written)
        if not self.completed and self.digest is not None:
            self.digests.keep(self.record.id, self.written, self.digest.copy())

    def _commit(self, batch: bytearray, renewed: UploadRecord, complete: bool) -> None:
        """In a thread: absorb, fsync, advance; then, with ``complete``, register the file.

        The last bytes of a whole upload still in memory (S3, smaller than a part) are stored
        straight into quarantine: durable there before the offset moves, and never written
        as a tail, read back, sealed and copied (``ObjectAppender.store_whole``)."""
        if batch:
            self._absorb(batch)
        runtime = self.runtime
        # A partial upload's bytes stay in the uploads area for the final upload to join.
        stored = complete and not renewed.is_partial and self.appender.store_whole(Area.QUARANTINE)
        if not stored:
            self.appender.sync()
        if not tus.advance(runtime.db, renewed, self.written):
            if stored:  # under the upload's lock nobody else stores it; no row will name it
                runtime.storage.delete(Area.QUARANTINE, renewed.id)
            raise FilegateError(ErrorCode.TUS_OFFSET_MISMATCH, "The upload changed meanwhile.")
        if not complete:
            return
        self.appender.close()
        self.appender = None
        done = dataclasses.replace(renewed, offset=self.written)
        sha256 = self.sha256()
        tus.complete(runtime.db, runtime.storage, runtime.queue, done, sha256, in_quarantine=stored)
        self.completed = True

    async def discard(self) -> None:
        """Drop this request's bytes (bad checksum, over the limit): the offset stays put."""
        await self.drain()
        await run_blocking(self.appender.truncate, self.record.offset)
        self.written = self.record.offset
        if self.start_digest is not None:
            self.digests.keep(self.record.id, self.start, self.start_digest)

    def sha256(self) -> str | None:
        """The upload's sha256 so far; None when it continued from bytes this process could
        not read back (the storage computes it once the object is sealed)."""
        return None if self.digest is None else str(self.digest.hexdigest())

    def checksum_matches(self) -> bool:
        assert self.checksum is not None
        assert self.check_hash is not None
        return bool(self.check_hash.digest() == self.checksum.digest)

    async def close(self) -> None:
        if self.appender is not None:
            await run_blocking(self.appender.close)


async def receive(receiver: PatchReceiver, chunks: AsyncIterator[bytes], holder: Holder) -> None:
    """Take one PATCH body into the upload: durable progress every SYNC_EVERY bytes (none
    before a checksum is verified), the bytes that did arrive kept when the client stops or
    stalls, this request's bytes dropped when they are refused; the offset moves only after
    the bytes are durable."""
    unsynced = 0
    try:
        async for chunk in chunks:
            await receiver.write(chunk)
            unsynced += len(chunk)
            # With a checksum, nothing of this request may count before it is verified.
            if unsynced >= SYNC_EVERY and receiver.checksum is None:
                await receiver.persist()
                unsynced = 0
    except asyncio.CancelledError:
        await _stopped(receiver, holder)
        raise FilegateError(ErrorCode.TUS_UPLOAD_STOPPED, "A newer request took over.") from None
    except FilegateError as exc:
        await _failed(receiver, exc)
        raise
    if receiver.checksum is not None:
        await receiver.drain()
        if not receiver.checksum_matches():
            await receiver.discard()
            raise FilegateError(
                ErrorCode.TUS_CHECKSUM_MISMATCH, "The chunk does not match Upload-Checksum."
            )
    await receiver.persist(finish=True)


async def _stopped(receiver: PatchReceiver, holder: Holder) -> None:
    task = asyncio.current_task()
    if holder.taken_over and task is not None:
        task.uncancel()
    await _keep_or_discard(receiver)
    if not holder.taken_over:
        raise asyncio.CancelledError  # shutdown: keep what arrived, then let it proceed


async def _failed(receiver: PatchReceiver, exc: FilegateError) -> None:
    if exc.code is ErrorCode.FILE_TOO_LARGE:
        await receiver.discard()
    else:
        # A dropped connection or a stall: the bytes that did arrive are good; keep them.
        await _keep_or_discard(receiver)


async def _keep_or_discard(receiver: PatchReceiver) -> None:
    if receiver.checksum is None:
        await receiver.persist()
    else:
        await receiver.discard()
