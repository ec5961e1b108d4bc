"""S3-compatible storage: ``s3://<bucket>/<prefix><area>/<key>``, through boto3.

Writers stream into a multipart upload (one part in memory at a time) and become visible only
when it is completed; an object smaller than one part is a single PUT at commit. A move is a
server-side copy, then a delete of the source. Errors keep S3's error code, never a URL or
credentials. The client comes from the composition root (``client_for``), already configured
with its endpoint, region, addressing style, timeouts and retries.
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from filegate.domain import Area, is_valid_id
from filegate.errors import ErrorCode, FilegateError
from filegate.storage.base import READ_CHUNK, check_key, concatenate_by_streaming

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef
else:
    S3Client = Any
    CompletedPartTypeDef = dict

# Parts of a writer's multipart upload. S3 wants at least 5 MiB for every part but the last;
# each writer holds one part in memory.
MIN_PART_SIZE = 5 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
# Parts of one stream on their way to S3 at once, sent from a shared pool of threads while the
# caller fills the next one: S3's round trip then overlaps receiving and hashing instead of
# stalling them. Memory per stream: this many parts plus the one filling.
PARTS_IN_FLIGHT = 2
PART_SENDERS = 16
# copy_object copies up to 5 GiB in one request; beyond, a multipart copy.
SINGLE_COPY_LIMIT = 5 * 1024**3
COPY_PART_SIZE = 512 * 1024 * 1024
PROBE_PREFIX = ".probe/"
# A download redirect's URL: long enough for a client to follow it, short enough that a
# leaked one is soon useless (S3 checks it when the request starts, not while it streams).
PRESIGNED_SECONDS = 300
# An appended object's tail pieces: <name>.tail-<start>-<end> (never a file id, so never listed
# by ``keys``).
TAIL_MARK = ".tail-"
# A tail object's metadata: how many bytes of its body are the manifest of parts.
MANIFEST_LENGTH = "filegate-manifest-bytes"
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# Multipart uploads of writers (quarantine, clean) that died can be aborted after a grace
# period; the uploads area holds resumable uploads, which expire by their own rules.
WRITER_AREAS = (Area.QUARANTINE, Area.CLEAN)


@functools.cache
def _part_senders() -> ThreadPoolExecutor:
    """The threads that send parts, shared by every stream of the process (boto3's clients
    are thread-safe); they block on the network, not on the GIL."""
    return ThreadPoolExecutor(PART_SENDERS, thread_name_prefix="filegate-s3-part")


def _fail(message: str, **extra: object) -> FilegateError:
    return FilegateError(ErrorCode.STORAGE_ERROR, message, **extra)


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


@contextmanager
def _s3_errors(message: str, **extra: object) -> Iterator[None]:
    """Turn a boto error into ``storage_error`` with S3's error code (no URLs, no keys)."""
    try:
        yield
    except ClientError as exc:
        raise _fail(message, reason=_code(exc), **extra) from None
    except BotoCoreError as exc:
        raise _fail(message, reason=type(exc).__name__, **extra) from None


class _Tail(NamedTuple):
    """A tail object: bytes [start, end) of an appended object, stored under ``name``."""

    start: int
    end: int
    name: str
    written: float


class _PartStream:
    """An object on its way into S3 as a multipart upload: bytes are buffered into parts of
    ``PART_SIZE`` and each full part is sent on a helper thread while the next one fills (at
    most ``PARTS_IN_FLIGHT`` parts on their way, so memory stays a few parts); ``_drain`` waits
    until S3 has acknowledged every part sent. ``_finish`` completes the upload with what is
    left as its last part, or PUTs an object smaller than a part whole."""

    def __init__(self, client: S3Client, bucket: str, name: str, area: Area, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._name = name
        self._extra: dict[str, object] = {"area": str(area), "key": key}
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._in_flight: deque[Future[CompletedPartTypeDef]] = deque()
        self._next_number = 1

    def _take(self, chunk: bytes) -> int:
        """Buffer ``chunk``, starting to send every part that filled; how many were started."""
        self._buffer += chunk
        sent = 0
        while len(self._buffer) >= PART_SIZE:
            self._send_part(bytes(self._buffer[:PART_SIZE]))
            del self._buffer[:PART_SIZE]
            sent += 1
        return sent

    def _send_part(self, data: bytes) -> None:
        """Start sending ``data`` as the next part, waiting first while too many are on their
        way (a failure of an earlier part surfaces here)."""
        if self._upload_id is None:
            with _s3_errors("cannot write object", **self._extra):
                created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._name)
            self._upload_id = created["UploadId"]
        while len(self._in_flight) >= PARTS_IN_FLIGHT:
            self._settle_oldest()
        number, self._next_number = self._next_number, self._next_number + 1
        self._in_flight.append(_part_senders().submit(self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytes) -> CompletedPartTypeDef:
        assert self._upload_id is not None
        with _s3_errors("cannot write object", **self._extra):
            answer = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
        return {"ETag": answer["ETag"], "PartNumber": number}

    def _settle_oldest(self) -> None:
        future = self._in_flight.popleft()
        try:
            self._parts.append(future.result())
        except BaseException:
            self._forget_in_flight()
            raise

    def _drain(self) -> None:
        """Wait until S3 acknowledged every part started (the first failure is raised)."""
        while self._in_flight:
            self._settle_oldest()

    def _forget_in_flight(self) -> None:
        """Wait for the parts still on their way, keeping none of them (after a failure, or
        when the stream is dropped)."""
        while self._in_flight:
            with suppress(Exception):
                self._in_flight.popleft().result()

    def _finish(self, message: str) -> None:
        with _s3_errors(message, **self._extra):
            if not self._parts and not self._in_flight:
                # Less than a part in all (an open multipart upload holds nothing of it).
                self._client.put_object(
                    Bucket=self._bucket, Key=self._name, Body=bytes(self._buffer)
                )
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                self._drain()
                assert self._upload_id is not None
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        self._buffer = bytearray()


class S3Writer(_PartStream):
    """Streams one object into a multipart upload; ``commit`` completes it."""

    def __init__(self, client: S3Client, bucket: str, name: str, area: Area, key: str) -> None:
        super().__init__(client, bucket, name, area, key)
        self._closed = False
        self._committed = False

    def write(self, chunk: bytes) -> None:
        if self._closed:
            raise _fail("writer is already closed", **self._extra)
        self._take(chunk)

    def commit(self) -> None:
        if self._closed:
            raise _fail("writer is already closed", **self._extra)
        self._closed = True
        self._finish("cannot commit object")
        self._committed = True

    def abort(self) -> None:
        """Drop the parts sent so far; nothing was visible under the key."""
        self._closed = True
        self._buffer = bytearray()
        self._forget_in_flight()
        if self._upload_id is not None and not self._committed:
            with suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name, UploadId=self._upload_id
                )
            self._upload_id = None


class S3Appender(_PartStream):
    """Appends to an object through a multipart upload, as tusd's s3store does.

    Bytes are sent as parts of ``PART_SIZE`` as they come. ``sync`` records the state in a
    *tail* object named after the byte range it holds, ``<name>.tail-<start>-<end>``: a
    manifest of the parts that hold bytes ``[0, start)`` (number and ETag of each, as S3
    acknowledged them), then the bytes after them (less than a part). Opening at an offset
    reads the tail that ends there; parts and tails a crash left behind (never acknowledged)
    are ignored and finally deleted. A part number is never used twice: some servers
    (SeaweedFS) keep every upload of a number and list them in no order, so only the ETag in
    the manifest tells which one holds the bytes. Memory: a few parts.
    """

    def __init__(self, storage: S3Storage, area: Area, key: str, offset: int) -> None:
        super().__init__(storage.client, storage.bucket, storage.name(area, key), area, key)
        self._storage = storage
        self._area = area
        self._key = key
        self._load(offset)

    def _load(self, offset: int) -> None:
        """The state that holds exactly the first ``offset`` bytes."""
        self._forget_in_flight()
        uploads = self._storage._multipart_uploads(self._area, self._key)
        self._upload_id = uploads[-1][0] if uploads else None
        listed = self._listed_parts() if self._upload_id is not None else []
        self._next_number = max((number for number, _, _ in listed), default=0) + 1
        self._parts = []
        self._buffer = bytearray()
        self._synced_tail: str | None = None
        self._stale_tail: str | None = None
        covered = 0
        tails = self._storage._tails(self._area, self._key)
        if offset > 0:
            ending = [tail for tail in tails if tail.end == offset]
            if not ending:
                raise self._shorter_than(offset)
            tail = max(ending, key=lambda t: t.written)
            manifest, data = self._read_tail(tail.name, offset)
            sizes = {(number, etag): size for number, size, etag in listed}
            for number, etag in manifest:
                if (number, etag) not in sizes:
                    raise self._shorter_than(offset)
                self._parts.append({"ETag": etag, "PartNumber": number})
                covered += sizes[number, etag]
            if covered != tail.start or covered + len(data) != offset:
                raise self._shorter_than(offset)
            self._buffer += data
            self._synced_tail = tail.name
        self._tail_start = covered
        self.offset = offset
        # Tails of other states: older syncs, or a sync a crash kept from being acknowledged.
        for tail in tails:
            if tail.name != self._synced_tail:
                self._delete_quietly(tail.name)

    def _read_tail(self, name: str, offset: int) -> tuple[list[tuple[int, str]], bytes]:
        """A tail's manifest (part number and ETag, in order) and its bytes."""
        with _s3_errors("cannot read an upload's tail", **self._extra):
            try:
                answer = self._client.get_object(Bucket=self._bucket, Key=name)
            except ClientError as exc:
                if _code(exc) in NOT_FOUND:
                    raise self._shorter_than(offset) from None
                raise
            body = answer["Body"].read()
        try:
            length = int(answer.get("Metadata", {})[MANIFEST_LENGTH])
            manifest = [(int(n), str(etag)) for n, etag in json.loads(body[:length])]
        except (KeyError, ValueError, TypeError):
            raise _fail("an upload's tail has no readable manifest", **self._extra) from None
        return manifest, body[length:]

    def _shorter_than(self, offset: int) -> FilegateError:
        return _fail("the upload's bytes are shorter than the offset", offset=offset, **self._extra)

    def _listed_parts(self) -> list[tuple[int, int, str]]:
        assert self._upload_id is not None
        parts = []
        with _s3_errors("cannot list an upload's parts", **self._extra):
            pages = self._client.get_paginator("list_parts").paginate(
                Bucket=self._bucket, Key=self._name, UploadId=self._upload_id
            )
            for page in pages:
                for part in page.get("Parts", []):
                    parts.append((part["PartNumber"], part["Size"], part["ETag"]))
        return sorted(parts)

    def _tail_name(self, start: int, end: int) -> str:
        return f"{self._name}{TAIL_MARK}{start}-{end}"

    def write(self, chunk: bytes) -> None:
        self.offset += len(chunk)
        self._tail_start += PART_SIZE * self._take(chunk)

    def sync(self) -> None:
        """Once S3 acknowledged the parts, record them and the bytes after them in a tail."""
        self._drain()
        name = self._tail_name(self._tail_start, self.offset)
        if self.offset == 0 or name == self._synced_tail:
            return
        manifest = json.dumps([[part["PartNumber"], part["ETag"]] for part in self._parts])
        head = manifest.encode()
        with _s3_errors("cannot sync object", **self._extra):
            self._client.put_object(
                Bucket=self._bucket,
                Key=name,
                Body=head + self._buffer,
                Metadata={MANIFEST_LENGTH: str(len(head))},
            )
        # The previous tail stays until the offset has moved past it (the caller advances it
        # after this sync); the one before that is no longer anybody's state.
        if self._stale_tail is not None:
            self._delete_quietly(self._stale_tail)
        self._stale_tail, self._synced_tail = self._synced_tail, name

    def store_whole(self, area: Area) -> bool:
        """Less than a part in all (no part in the manifest or sent): PUT it from memory."""
        if self._parts or self._in_flight:
            return False
        with _s3_errors("cannot store object", **self._extra):
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._storage.name(area, self._key),
                Body=bytes(self._buffer),
            )
        return True

    def _delete_quietly(self, name: str) -> None:
        with suppress(ClientError, BotoCoreError):
            self._client.delete_object(Bucket=self._bucket, Key=name)

    def truncate(self, size: int) -> None:
        """Back to the state of ``size`` bytes: what was durable then is durable still."""
        self._load(size)

    def close(self) -> None:
        # A part still on its way must land before another request lists the upload's parts,
        # or that request could number its own first part the same.
        self._forget_in_flight()
        self._buffer = bytearray()

    def complete(self) -> None:
        """Finish the multipart upload with the tail as its last part (or PUT a small object
        whole), then delete the tails and any older multipart uploads on the key."""
        self._finish("cannot finish object")
        for upload_id, _ in self._storage._multipart_uploads(self._area, self._key):
            with suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._name, UploadId=upload_id
                )
        for tail in self._storage._tails(self._area, self._key):
            self._delete_quietly(tail.name)


class S3Storage:
    """The Storage protocol on an S3 bucket, under ``prefix``."""

    # The parts of a multipart upload cannot be read before it is completed.
    reads_unfinished_uploads = False

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    @property
    def client(self) -> S3Client:
        return self._client

    @property
    def bucket(self) -> str:
        return self._bucket

    def name(self, area: Area, key: str) -> str:
        """The object's S3 key."""
        return f"{self._prefix}{area.value}/{check_key(key)}"

    def writer(self, area: Area, key: str) -> S3Writer:
        return S3Writer(self._client, self._bucket, self.name(area, key), area, key)

    def appender(self, area: Area, key: str, offset: int) -> S3Appender:
        if offset < 0:
            raise _fail("invalid offset", offset=offset)
        return S3Appender(self, area, key, offset)

    def seal(self, area: Area, key: str, size: int) -> None:
        """Make the first ``size`` appended bytes an ordinary object under the key: the open
        multipart upload's parts, then its tail as the last part. A no-op when the object is
        already there (a repeat after a crash)."""
        if self.exists(area, key):
            return
        appender = S3Appender(self, area, key, size)
        appender.complete()

    def _tails(self, area: Area, key: str) -> list[_Tail]:
        """Every tail object of an appended object."""
        base = f"{self.name(area, key)}{TAIL_MARK}"
        tails = []
        with _s3_errors("cannot list an upload's pieces", area=str(area), key=key):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=base
            )
            for page in pages:
                for item in page.get("Contents", []):
                    start, _, end = item["Key"][len(base) :].partition("-")
                    if start.isdigit() and end.isdigit():
                        written = item["LastModified"].timestamp()
                        tails.append(_Tail(int(start), int(end), item["Key"], written))
        return tails

    def _multipart_uploads(self, area: Area, key: str) -> list[tuple[str, float]]:
        """(upload id, initiated) of the multipart uploads open on the key, oldest first."""
        name = self.name(area, key)
        found = []
        with _s3_errors("cannot list an upload's parts", area=str(area), key=key):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self._bucket, Prefix=name
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Key"] == name:
                        found.append((upload["UploadId"], upload["Initiated"].timestamp()))
        return sorted(found, key=lambda item: item[1])

    def read(self, area: Area, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream ``[start, end)``, clipped to the object; a missing object fails here, eagerly."""
        if start < 0 or (end is not None and end < start):
            raise _fail("invalid byte range", start=start, end=end)
        extra = {"area": str(area), "key": key}
        if start == 0 and end is None:  # the whole object: one GET, no HEAD for its size
            answer = self._on_object(self._client.get_object, area, key)
            return _stream(answer["Body"], area, extra)
        size = self.size(area, key)
        stop = size if end is None else min(end, size)
        if stop <= start:
            return iter(())
        answer = self._on_object(
            self._client.get_object, area, key, Range=f"bytes={start}-{stop - 1}"
        )
        return _stream(answer["Body"], area, extra)

    def size(self, area: Area, key: str) -> int:
        return int(self._head(area, key)["ContentLength"])

    def exists(self, area: Area, key: str) -> bool:
        try:
            self._head(area, key)
        except FilegateError as exc:
            if exc.extra.get("missing"):
                return False
            raise
        return True

    def move(self, source: Area, target: Area, key: str) -> None:
        try:
            size = self.size(source, key)
        except FilegateError as exc:
            if exc.extra.get("missing") and self.exists(target, key):
                return  # an earlier move already succeeded
            raise
        origin = self.name(source, key)
        destination = self.name(target, key)
        with _s3_errors(f"cannot move object from {source} to {target}", key=key):
            if size <= SINGLE_COPY_LIMIT:
                self._client.copy_object(
                    CopySource={"Bucket": self._bucket, "Key": origin},
                    Bucket=self._bucket,
                    Key=destination,
                )
            else:
                self._copy_parts(destination, [(origin, size)])
            self._client.delete_object(Bucket=self._bucket, Key=origin)

    def concatenate(self, source: Area, parts: Sequence[str], target: Area, key: str) -> None:
        """A multipart upload whose parts are server-side copies of the sources, when S3 allows
        it (every source but the last at least ``MIN_PART_SIZE``); else streamed through."""
        sources = [(self.name(source, part), self.size(source, part)) for part in parts]
        sources = [(name, size) for name, size in sources if size]
        if not sources or any(size < MIN_PART_SIZE for _, size in sources[:-1]):
            concatenate_by_streaming(self, source, parts, target, key)
            return
        with _s3_errors(f"cannot concatenate into {target}", key=key):
            self._copy_parts(self.name(target, key), sources)

    def _copy_parts(self, destination: str, sources: Sequence[tuple[str, int]]) -> None:
        """Complete ``destination`` from server-side copies of (S3 key, size), in order; each
        source larger than a copy part is taken in ranges."""
        created = self._client.create_multipart_upload(Bucket=self._bucket, Key=destination)
        upload_id = created["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        try:
            for origin, size in sources:
                for start, stop in _copy_ranges(size):
                    number = len(parts) + 1
                    answer = self._client.upload_part_copy(
                        Bucket=self._bucket,
                        Key=destination,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySource={"Bucket": self._bucket, "Key": origin},
                        CopySourceRange=f"bytes={start}-{stop - 1}",
                    )
                    parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=destination,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with suppress(ClientError, BotoCoreError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=destination, UploadId=upload_id
                )
            raise

    def delete(self, area: Area, key: str) -> None:
        """The object, and an appended object's open multipart upload and tails."""
        with _s3_errors(f"cannot delete object from {area}", area=str(area), key=key):
            self._client.delete_object(Bucket=self._bucket, Key=self.name(area, key))
        if area is not Area.UPLOADS:
            return
        for upload_id, _ in self._multipart_uploads(area, key):
            with _s3_errors("cannot abort an upload's parts", area=str(area), key=key):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self.name(area, key), UploadId=upload_id
                )
        for tail in self._tails(area, key):
            with _s3_errors("cannot delete an upload's piece", area=str(area), key=key):
                self._client.delete_object(Bucket=self._bucket, Key=tail.name)

    def keys(self, area: Area) -> Iterator[str]:
        """Committed objects; in the uploads area also the unfinished ones (an open multipart
        upload, tails), so reconciliation finds the pieces of an upload nobody will finish."""
        base = f"{self._prefix}{area.value}/"
        committed: set[str] = set()
        unfinished: set[str] = set()
        with _s3_errors(f"cannot list {area}", area=str(area)):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=base
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key, mark, _ = item["Key"][len(base) :].partition(TAIL_MARK)
                    if not is_valid_id(key):
                        continue
                    if not mark:
                        committed.add(key)
                        yield key
                    elif area is Area.UPLOADS:
                        unfinished.add(key)
            if area is Area.UPLOADS:
                uploads = self._client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=self._bucket, Prefix=base
                )
                for listing in uploads:
                    for upload in listing.get("Uploads", []):
                        key = upload["Key"][len(base) :]
                        if is_valid_id(key):
                            unfinished.add(key)
        # An upload both sealed and unfinished (a crash mid-seal) was listed once already.
        yield from sorted(unfinished - committed)

    def modified(self, area: Area, key: str) -> float:
        """When the object was written; for an unfinished upload, its newest piece."""
        try:
            return float(self._head(area, key)["LastModified"].timestamp())
        except FilegateError as exc:
            if not (exc.extra.get("missing") and area is Area.UPLOADS):
                raise
            times = [initiated for _, initiated in self._multipart_uploads(area, key)]
            times += [tail.written for tail in self._tails(area, key)]
            if not times:
                raise
            return max(times)

    def download_url(
        self, area: Area, key: str, *, content_type: str, content_disposition: str
    ) -> str | None:
        """A presigned GET, valid ``PRESIGNED_SECONDS``, with S3 told to answer with our
        Content-Type, Content-Disposition and Cache-Control (its response-* parameters)."""
        with _s3_errors(f"cannot sign a download from {area}", area=str(area), key=key):
            return self._client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": self.name(area, key),
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": content_disposition,
                    "ResponseCacheControl": "private, no-store",
                },
                ExpiresIn=PRESIGNED_SECONDS,
            )

    def local_path(self, area: Area, key: str) -> str | None:
        check_key(key)
        return None

    def check(self) -> None:
        """A write and a delete under the prefix: the bucket exists and takes uploads."""
        probe = f"{self._prefix}{PROBE_PREFIX}{uuid.uuid4().hex}"
        with _s3_errors("the S3 bucket is not writable"):
            self._client.put_object(Bucket=self._bucket, Key=probe, Body=b"probe")
            self._client.delete_object(Bucket=self._bucket, Key=probe)

    def public_access(self) -> list[str]:
        """What a client without credentials can do here: ``list the bucket``, ``read
        objects``; empty when S3 refuses both, as it must for quarantined uploads."""
        meta = self._client.meta
        anonymous = boto3.session.Session().client(
            "s3",
            endpoint_url=meta.endpoint_url,
            config=Config(
                signature_version=UNSIGNED,
                region_name=meta.region_name,
                s3=getattr(meta.config, "s3", None),
                connect_timeout=5,
                read_timeout=10,
                retries={"max_attempts": 1},
            ),
        )
        probe = f"{self._prefix}{PROBE_PREFIX}{uuid.uuid4().hex}"
        allowed = []
        attempts: list[tuple[str, Callable[[], object]]] = [
            ("list the bucket", lambda: anonymous.list_objects_v2(Bucket=self._bucket)),
            ("read objects", lambda: anonymous.get_object(Bucket=self._bucket, Key=probe)),
        ]
        with _s3_errors("the S3 bucket is not writable"):
            self._client.put_object(Bucket=self._bucket, Key=probe, Body=b"probe")
        try:
            for what, attempt in attempts:
                try:
                    attempt()
                except ClientError:
                    continue
                allowed.append(what)
        finally:
            with suppress(ClientError, BotoCoreError):
                self._client.delete_object(Bucket=self._bucket, Key=probe)
            anonymous.close()
        return allowed

    def cleanup_stale_temp(self, older_than_seconds: float) -> int:
        """Abort writers' multipart uploads begun longer ago than that (their process died)."""
        cutoff = time.time() - older_than_seconds
        aborted = 0
        for area in WRITER_AREAS:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self._bucket, Prefix=f"{self._prefix}{area.value}/"
            )
            with _s3_errors("cannot clean up unfinished uploads"):
                for page in pages:
                    for upload in page.get("Uploads", []):
                        if upload["Initiated"].timestamp() < cutoff:
                            with suppress(ClientError):
                                self._client.abort_multipart_upload(
                                    Bucket=self._bucket,
                                    Key=upload["Key"],
                                    UploadId=upload["UploadId"],
                                )
                                aborted += 1
        return aborted

    def _head(self, area: Area, key: str) -> dict[str, Any]:
        return dict(self._on_object(self._client.head_object, area, key))

    def _on_object(self, call: Callable[..., Any], area: Area, key: str, **params: object) -> Any:
        """``call`` (head_object, get_object) on the object; a missing one fails with
        ``missing`` in the error's extra."""
        try:
            return call(Bucket=self._bucket, Key=self.name(area, key), **params)
        except ClientError as exc:
            if _code(exc) in NOT_FOUND:
                raise _fail(
                    f"object not found in {area}", area=str(area), key=key, missing=True
                ) from None
            raise _fail(
                f"cannot read object from {area}", reason=_code(exc), area=str(area), key=key
            ) from None
        except BotoCoreError as exc:
            raise _fail(
                f"cannot read object from {area}", reason=type(exc).__name__, area=str(area)
            ) from None


def _copy_ranges(size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of ``COPY_PART_SIZE`` covering ``size`` bytes; a remainder below
    S3's minimum part size joins the range before it."""
    starts = list(range(0, size, COPY_PART_SIZE))
    if len(starts) > 1 and size - starts[-1] < MIN_PART_SIZE:
        starts.pop()
    return list(zip(starts, [*starts[1:], size], strict=True))


def _stream(body: Any, area: Area, extra: Mapping[str, object]) -> Iterator[bytes]:
    try:
        with _s3_errors(f"cannot read object from {area}", **extra):
            yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()


def make_client(
    *, endpoint_url: str, region: str, addressing_style: Literal["auto", "path", "virtual"]
) -> S3Client:
    """A boto3 S3 client with the standard credential chain (environment, profile, instance
    role), bounded timeouts and retries, and a connection pool for the worker threads.

    Clients are thread-safe and costly to build (a second of loading service models), so
    one is kept per configuration and credential environment.
    """
    credentials = tuple(os.environ.get(name, "") for name in _CREDENTIAL_VARIABLES)
    return _client(endpoint_url, region, addressing_style, credentials)


_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


@functools.lru_cache(maxsize=16)
def _client(
    endpoint_url: str,
    region: str,
    addressing_style: Literal["auto", "path", "virtual"],
    credentials: tuple[str, ...],
) -> S3Client:
    config = Config(
        region_name=region or None,
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 4, "mode": "standard"},
        max_pool_connections=64,
        # Checksums only where S3 requires them: the parts are hashed by filegate already,
        # and several S3-compatible services reject the newer checksum headers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def parse_storage_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); the prefix may be empty."""
    if not url.startswith("s3://"):
        raise ValueError("storage_url must start with s3://")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError("storage_url names no bucket")
    return bucket, prefix.strip("/")
