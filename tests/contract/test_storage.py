"""One contract for every Storage backend, then the few things only the local disk promises."""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from filegate.domain import Area, new_id
from filegate.errors import ErrorCode, FilegateError
from filegate.storage import s3
from filegate.storage.base import READ_CHUNK, ObjectWriter, Storage
from filegate.storage.local import LocalStorage
from filegate.storage.s3 import S3Storage
from tests.support.seaweed import S3Server, s3_requests

Q = Area.QUARANTINE
C = Area.CLEAN
MIB = 1024 * 1024


def _local(request: pytest.FixtureRequest) -> Storage:
    return LocalStorage(request.getfixturevalue("tmp_path") / "storage")


def _s3(request: pytest.FixtureRequest) -> Storage:
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(server.client(), bucket, f"t-{uuid.uuid4().hex}")


# Adding a backend is one entry: a factory that may pull whatever fixtures it needs (or skip).
BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Storage]] = {"local": _local, "s3": _s3}


@pytest.fixture(params=list(BACKENDS))
def storage(request: pytest.FixtureRequest) -> Storage:
    return BACKENDS[request.param](request)


def put(storage: Storage, area: Area, key: str, data: bytes, chunk: int = 64 * 1024) -> None:
    writer = storage.writer(area, key)
    for offset in range(0, len(data), chunk):
        writer.write(data[offset : offset + chunk])
    writer.commit()


def get(storage: Storage, area: Area, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(storage.read(area, key, start, end))


@contextmanager
def raises_storage_error(match: str | None = None) -> Iterator[pytest.ExceptionInfo[FilegateError]]:
    with pytest.raises(FilegateError, match=match) as info:
        yield info
    assert info.value.code is ErrorCode.STORAGE_ERROR


# --- write, commit, read ------------------------------------------------------------------------


def test_backend_satisfies_the_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    writer = storage.writer(Q, new_id())
    assert isinstance(writer, ObjectWriter)
    writer.abort()


def test_roundtrip_small_object(storage: Storage) -> None:
    key = new_id()
    put(storage, Q, key, b"hello, filegate")
    assert get(storage, Q, key) == b"hello, filegate"
    assert storage.size(Q, key) == 15
    assert storage.exists(Q, key)
    assert not storage.exists(C, key)


def test_roundtrip_empty_object(storage: Storage) -> None:
    key = new_id()
    storage.writer(Q, key).commit()
    assert storage.exists(Q, key)
    assert storage.size(Q, key) == 0
    assert get(storage, Q, key) == b""


def test_roundtrip_multi_mib_streams_in_bounded_chunks(storage: Storage) -> None:
    key = new_id()
    data = os.urandom(3 * READ_CHUNK + 12345)
    put(storage, Q, key, data, chunk=100_000)
    chunks = list(storage.read(Q, key))
    assert b"".join(chunks) == data
    assert len(chunks) >= 4
    assert max(len(c) for c in chunks) <= READ_CHUNK
    assert storage.size(Q, key) == len(data)


def test_abandoning_a_read_midway_is_clean(storage: Storage) -> None:
    key = new_id()
    put(storage, Q, key, os.urandom(2 * READ_CHUNK + 1))
    stream = storage.read(Q, key)
    assert len(next(iter(stream))) == READ_CHUNK
    close = getattr(stream, "close", None)
    if close is not None:
        close()


SIZE = 2 * READ_CHUNK + 10
RANGES = [
    (0, 0),
    (0, 1),
    (0, None),
    (SIZE - 1, SIZE),
    (SIZE - 1, None),
    (SIZE, None),
    (SIZE, SIZE),
    (10, SIZE + 1000),  # end beyond the object is clipped
    (SIZE + 5, None),  # start beyond the object yields nothing
    (READ_CHUNK - 1, READ_CHUNK + 1),  # across a chunk boundary
    (5, 5),
    (123, 456),
]


@pytest.fixture(scope="module")
def range_data() -> bytes:
    return os.urandom(SIZE)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_range_reads_follow_slice_semantics(
    storage: Storage, range_data: bytes, start: int, end: int | None
) -> None:
    key = new_id()
    put(storage, Q, key, range_data, chunk=MIB)
    assert get(storage, Q, key, start, end) == range_data[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (-1, 5), (10, 9)])
def test_invalid_ranges_are_rejected(storage: Storage, start: int, end: int | None) -> None:
    key = new_id()
    put(storage, Q, key, b"0123456789abcdef")
    with raises_storage_error():
        get(storage, Q, key, start, end)


def test_reading_a_missing_object_fails(storage: Storage) -> None:
    with raises_storage_error() as info:
        storage.read(Q, new_id())  # at the call, before any chunk is asked for
    assert "quarantine" in info.value.message
    assert info.value.extra.get("missing") is True


# --- visibility and writer lifecycle ------------------------------------------------------------


def test_nothing_is_visible_before_commit(storage: Storage) -> None:
    key = new_id()
    writer = storage.writer(Q, key)
    writer.write(b"pending bytes")
    assert not storage.exists(Q, key)
    assert key not in set(storage.keys(Q))
    assert storage.local_path(Q, key) is None
    with raises_storage_error():
        storage.size(Q, key)
    writer.commit()
    assert storage.exists(Q, key)
    assert get(storage, Q, key) == b"pending bytes"


def test_abort_leaves_no_object_and_is_idempotent(storage: Storage) -> None:
    key = new_id()
    writer = storage.writer(Q, key)
    writer.write(b"x" * 1000)
    writer.abort()
    writer.abort()
    assert not storage.exists(Q, key)
    assert list(storage.keys(Q)) == []


def test_abort_after_commit_is_harmless(storage: Storage) -> None:
    key = new_id()
    writer = storage.writer(Q, key)
    writer.write(b"kept")
    writer.commit()
    writer.abort()
    assert get(storage, Q, key) == b"kept"


@pytest.mark.parametrize("finish", ["commit", "abort"])
def test_writer_is_closed_after_commit_or_abort(storage: Storage, finish: str) -> None:
    writer = storage.writer(Q, new_id())
    writer.write(b"a")
    getattr(writer, finish)()
    with raises_storage_error():
        writer.write(b"b")
    with raises_storage_error():
        writer.commit()


def test_commit_replaces_an_existing_object(storage: Storage) -> None:
    key = new_id()
    put(storage, Q, key, b"a much longer first version")
    put(storage, Q, key, b"second")
    assert get(storage, Q, key) == b"second"
    assert storage.size(Q, key) == 6
    assert list(storage.keys(Q)) == [key]


def test_an_uncommitted_replacement_leaves_the_old_object(storage: Storage) -> None:
    key = new_id()
    put(storage, Q, key, b"old")
    writer = storage.writer(Q, key)
    writer.write(b"new")
    assert get(storage, Q, key) == b"old"
    writer.abort()
    assert get(storage, Q, key) == b"old"


# --- move, delete, keys -------------------------------------------------------------------------


def test_move_between_areas_and_repeat_is_a_noop(storage: Storage) -> None:
    key = new_id()
    put(storage, Q, key, b"promote me")
    storage.move(Q, C, key)
    assert not storage.exists(Q, key)
    assert get(storage, C, key) == b"promote me"
    storage.move(Q, C, key)
    assert get(storage, C, key) == b"promote me"
    assert list(storage.keys(Q)) == []


def test_move_with_nothing_to_move_fails(storage: Storage) -> None:
    with raises_storage_error():
        storage.move(Q, C, new_id())


def test_delete_is_idempotent(storage: Storage) -> None:
    key = new_id()
    put(storage, C, key, b"bye")
    storage.delete(C, key)
    assert not storage.exists(C, key)
    storage.delete(C, key)
    storage.delete(Q, new_id())


def test_keys_lists_only_committed_objects_per_area(storage: Storage) -> None:
    committed = {new_id() for _ in range(5)}
    for key in committed:
        put(storage, Q, key, key.encode())
    pending = storage.writer(Q, new_id())
    pending.write(b"pending")
    aborted = storage.writer(Q, new_id())
    aborted.write(b"aborted")
    aborted.abort()
    clean_key = new_id()
    put(storage, C, clean_key, b"clean")
    listed = list(storage.keys(Q))
    assert sorted(listed) == sorted(committed)
    assert list(storage.keys(C)) == [clean_key]
    pending.abort()


def test_modified_is_the_write_time_and_missing_objects_fail(storage: Storage) -> None:
    before = time.time()
    key = new_id()
    put(storage, Q, key, b"x")
    assert before - 5 <= storage.modified(Q, key) <= time.time() + 5
    with raises_storage_error():
        storage.modified(C, key)


def test_local_path_is_none_or_the_object(storage: Storage) -> None:
    key = new_id()
    assert storage.local_path(Q, key) is None
    put(storage, Q, key, b"inspect me")
    path = storage.local_path(Q, key)
    if path is not None:
        assert Path(path).read_bytes() == b"inspect me"


def test_check_passes_on_a_healthy_backend(storage: Storage) -> None:
    storage.check()
    storage.check()


# --- keys that are not file ids -----------------------------------------------------------------

BAD_KEYS = {
    "traversal": "../../etc/passwd",
    "slash": "a/b",
    "empty": "",
    "lowercase": "01arz3ndektsv4rrffq69g5fav",
    "25-chars": "01ARZ3NDEKTSV4RRFFQ69G5FA",
    "27-chars": "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
    "excluded-letter": "01ARZ3NDEKTSV4RRFFQ69G5FAU",
    "dot-dot-id": "../01ARZ3NDEKTSV4RRFFQ69G5F",
    "absolute": "/01ARZ3NDEKTSV4RRFFQ69G5FAV",
}
# `$` would accept a trailing newline; ids must match in full.
NEWLINE_KEY = pytest.param("01ARZ3NDEKTSV4RRFFQ69G5FAV\n", id="trailing-newline")

CALLS: dict[str, Callable[[Storage, str], object]] = {
    "writer": lambda s, k: s.writer(Q, k).abort(),
    "read": lambda s, k: b"".join(s.read(Q, k)),
    "size": lambda s, k: s.size(Q, k),
    "exists": lambda s, k: s.exists(Q, k),
    "move": lambda s, k: s.move(Q, C, k),
    "delete": lambda s, k: s.delete(Q, k),
    "local_path": lambda s, k: s.local_path(Q, k),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize(
    "key", [*(pytest.param(k, id=name) for name, k in BAD_KEYS.items()), NEWLINE_KEY]
)
def test_keys_that_are_not_file_ids_are_rejected(storage: Storage, call: str, key: str) -> None:
    # Matching the message proves the key was refused, not merely not found.
    with raises_storage_error(match="storage keys must be file ids"):
        CALLS[call](storage, key)


# --- appended objects (resumable uploads) --------------------------------------------------

U = Area.UPLOADS


def append(storage: Storage, key: str, offset: int, data: bytes, chunk: int = MIB) -> None:
    """One request's worth: open at ``offset``, write, sync, close."""
    appender = storage.appender(U, key, offset)
    try:
        for start in range(0, len(data), chunk):
            appender.write(data[start : start + chunk])
        appender.sync()
    finally:
        appender.close()


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    """S3 parts of 5 MiB (its minimum) instead of 8, so a test crosses several of them."""
    monkeypatch.setattr(s3, "PART_SIZE", 5 * MIB)
    return 5 * MIB


def test_appends_across_requests_seal_into_one_object(storage: Storage, small_parts: int) -> None:
    key = new_id()
    data = os.urandom(17 * MIB + 4321)
    cuts = [0, 3 * MIB + 7, 11 * MIB + 1, len(data)]  # inside parts, across part boundaries
    for start, end in itertools.pairwise(cuts):
        append(storage, key, start, data[start:end], chunk=MIB // 3)
    storage.seal(U, key, len(data))
    assert storage.size(U, key) == len(data)
    assert get(storage, U, key) == data
    storage.seal(U, key, len(data))  # a repeat after a crash changes nothing
    storage.move(U, Q, key)
    assert get(storage, Q, key) == data


def test_an_empty_upload_seals_into_an_empty_object(storage: Storage) -> None:
    key = new_id()
    storage.seal(U, key, 0)
    assert get(storage, U, key) == b""


def test_bytes_never_acknowledged_are_ignored_on_reopen(storage: Storage, small_parts: int) -> None:
    """A request wrote and synced past the offset, then died before the offset moved: the
    next request opens at the old offset and those bytes are gone."""
    key = new_id()
    kept = os.urandom(6 * MIB + 11)
    append(storage, key, 0, kept)
    append(storage, key, len(kept), os.urandom(9 * MIB))  # never acknowledged
    # Longer than a part: S3 took a part of the same range above (SeaweedFS then lists both).
    rest = os.urandom(small_parts + 2 * MIB + 5)
    append(storage, key, len(kept), rest)
    storage.seal(U, key, len(kept) + len(rest))
    assert get(storage, U, key) == kept + rest


def test_truncate_drops_this_requests_bytes(storage: Storage, small_parts: int) -> None:
    key = new_id()
    kept = os.urandom(MIB + 3)
    append(storage, key, 0, kept)
    appender = storage.appender(U, key, len(kept))
    appender.write(os.urandom(12 * MIB))  # a checksum mismatch: all of it must go
    appender.truncate(len(kept))
    appender.write(b"tail")
    appender.sync()
    appender.close()
    storage.seal(U, key, len(kept) + 4)
    assert get(storage, U, key) == kept + b"tail"


def test_an_offset_past_the_stored_bytes_fails(storage: Storage) -> None:
    key = new_id()
    append(storage, key, 0, b"0123456789")
    with raises_storage_error():
        storage.appender(U, key, 11)


def test_deleting_an_upload_removes_every_piece(storage: Storage, small_parts: int) -> None:
    key = new_id()
    append(storage, key, 0, os.urandom(7 * MIB))
    storage.delete(U, key)
    assert not storage.exists(U, key)
    with raises_storage_error():
        storage.appender(U, key, 7 * MIB)
    if isinstance(storage, S3Storage):  # no parts or tails are left to pay for
        assert storage._multipart_uploads(U, key) == []
        assert storage._tails(U, key) == []


def test_store_whole_puts_an_upload_in_memory_into_an_area_in_one_step(
    storage: Storage, small_parts: int
) -> None:
    """Only S3 has a reason to (the bytes are all still in memory there): the object appears
    whole in the area, and the appended pieces stay until the caller deletes them."""
    key = new_id()
    first, rest = os.urandom(MIB + 3), os.urandom(2 * MIB)
    append(storage, key, 0, first)
    appender = storage.appender(U, key, len(first))
    appender.write(rest)
    stored = appender.store_whole(Q)
    appender.close()
    assert stored is isinstance(storage, S3Storage)
    if not stored:
        assert not storage.exists(Q, key)
        return
    assert get(storage, Q, key) == first + rest
    storage.appender(U, key, len(first)).close()  # the synced state is still there
    storage.delete(U, key)
    assert get(storage, Q, key) == first + rest


def test_store_whole_declines_once_a_part_was_sent(storage: Storage, small_parts: int) -> None:
    key = new_id()
    appender = storage.appender(U, key, 0)
    appender.write(os.urandom(small_parts + 1))
    assert appender.store_whole(Q) is False
    appender.close()
    assert not storage.exists(Q, key)


@pytest.mark.parametrize(
    ("sizes", "server_side"),
    [
        pytest.param((6 * MIB, 5 * MIB + 3, 100), True, id="parts-big-enough"),
        pytest.param((6 * MIB, 0, 5 * MIB, 0), True, id="empty-parts-skipped"),
        pytest.param((1024, 6 * MIB), False, id="a-small-part-first"),
        pytest.param((0, 0), False, id="all-empty"),
    ],
)
def test_concatenate_joins_sealed_uploads_in_order(
    storage: Storage,
    small_parts: int,
    monkeypatch: pytest.MonkeyPatch,
    sizes: tuple[int, ...],
    server_side: bool,
) -> None:
    if isinstance(storage, S3Storage) and server_side:
        # S3 copies parts server-side when every part but the last is big enough: no byte
        # passes through this process.
        def refuse(*_: object) -> None:
            raise AssertionError("streamed through the process")

        monkeypatch.setattr(s3, "concatenate_by_streaming", refuse)
    parts = [os.urandom(size) for size in sizes]
    keys = [new_id() for _ in parts]
    for key, data in zip(keys, parts, strict=True):
        append(storage, key, 0, data)
        storage.seal(U, key, len(data))
    joined = new_id()
    storage.concatenate(U, keys, Q, joined)
    assert get(storage, Q, joined) == b"".join(parts)
    assert all(storage.exists(U, key) for key in keys)
    if isinstance(storage, S3Storage):
        assert storage._multipart_uploads(Q, joined) == []


def test_an_unfinished_upload_is_listed_and_dated_until_deleted(
    storage: Storage, small_parts: int
) -> None:
    """Reconciliation finds an upload nobody will finish by its key and age, sealed or not."""
    before = time.time()
    parts, tail_only, sealed = new_id(), new_id(), new_id()
    append(storage, parts, 0, os.urandom(6 * MIB))  # a part and a tail
    append(storage, tail_only, 0, b"just a tail")
    append(storage, sealed, 0, b"sealed")
    storage.seal(U, sealed, 6)
    listed = list(storage.keys(U))
    assert sorted(listed) == sorted([parts, tail_only, sealed])
    for key in listed:
        assert before - 5 <= storage.modified(U, key) <= time.time() + 5
    for key in listed:
        storage.delete(U, key)
    assert list(storage.keys(U)) == []
    with raises_storage_error():
        storage.modified(U, parts)


# --- local disk only ----------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def local(root: Path) -> LocalStorage:
    return LocalStorage(root)


def temp_files(root: Path, key: str = "") -> list[Path]:
    every = (p for area in Area for p in (root / area.value / ".tmp").iterdir())
    return sorted(p for p in every if p.name.startswith(key))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_local_layout_shards_by_the_key_tail(local: LocalStorage, root: Path) -> None:
    key = new_id()
    put(local, Q, key, b"x")
    assert (root / "quarantine" / key[-2:] / key).read_bytes() == b"x"
    assert local.local_path(Q, key) == str(root.resolve() / "quarantine" / key[-2:] / key)


def test_local_abort_and_commit_leave_no_temp_files(local: LocalStorage, root: Path) -> None:
    writer = local.writer(Q, new_id())
    writer.write(b"x" * 5000)
    assert len(temp_files(root)) == 1
    writer.abort()
    put(local, Q, new_id(), b"y")
    assert temp_files(root) == []


def test_local_abort_after_a_failed_commit_removes_the_temp_file(
    local: LocalStorage, root: Path
) -> None:
    key = new_id()
    (root / "quarantine" / key[-2:]).write_bytes(b"a file where the shard directory belongs")
    writer = local.writer(Q, key)
    writer.write(b"data")
    with raises_storage_error():
        writer.commit()
    writer.abort()
    assert temp_files(root) == []
    assert not local.exists(Q, key)


def test_local_files_and_directories_are_private(local: LocalStorage, root: Path) -> None:
    key = new_id()
    writer = local.writer(Q, key)
    writer.write(b"secret")
    assert [mode(p) for p in temp_files(root)] == [0o600]
    writer.commit()
    assert mode(root / "quarantine" / key[-2:] / key) == 0o600
    assert mode(root / "quarantine" / key[-2:]) == 0o700
    for area in Area:
        assert mode(root / area.value) == 0o700
        assert mode(root / area.value / ".tmp") == 0o700


def test_local_move_keeps_the_file_private(local: LocalStorage, root: Path) -> None:
    key = new_id()
    put(local, Q, key, b"x")
    local.move(Q, C, key)
    assert mode(root / "clean" / key[-2:] / key) == 0o600


def test_local_cleanup_removes_only_stale_temp_files(local: LocalStorage, root: Path) -> None:
    crashed = root / "clean" / ".tmp" / f"{new_id()}.crashed"
    crashed.write_bytes(b"left by a crash")
    stalled_key, active_key = new_id(), new_id()
    stalled = local.writer(Q, stalled_key)
    active = local.writer(Q, active_key)
    active.write(b"active")
    hour_ago = time.time() - 3600
    for path in [crashed, *temp_files(root, stalled_key)]:
        os.utime(path, (hour_ago, hour_ago))
    assert local.cleanup_stale_temp(older_than_seconds=600) == 2
    assert temp_files(root) == temp_files(root, active_key)
    assert len(temp_files(root)) == 1
    stalled.abort()  # its temp file is already gone; abort must not mind
    active.commit()
    assert get(local, Q, active_key) == b"active"
    assert temp_files(root) == []


def test_local_check_fails_when_an_area_is_unusable(local: LocalStorage, root: Path) -> None:
    # We run as root, which ignores permission bits, so break the area by making it a file.
    shutil.rmtree(root / "clean")
    (root / "clean").write_bytes(b"not a directory")
    with raises_storage_error() as info:
        local.check()
    assert "clean" in info.value.message


def test_local_check_fails_when_the_temp_dir_is_gone(local: LocalStorage, root: Path) -> None:
    (root / "quarantine" / ".tmp").rmdir()
    with raises_storage_error():
        local.check()


def test_local_construction_fails_on_an_unusable_root(root: Path) -> None:
    root.mkdir()
    (root / "quarantine").write_bytes(b"not a directory")
    with raises_storage_error():
        LocalStorage(root)


def test_local_symlinked_shard_cannot_escape_the_area(
    local: LocalStorage, root: Path, tmp_path: Path
) -> None:
    key = new_id()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / key).write_bytes(b"not filegate's")
    (root / "quarantine" / key[-2:]).symlink_to(outside)
    for call in CALLS.values():
        with raises_storage_error(match="escapes the quarantine area"):
            call(local, key)
    assert (outside / key).read_bytes() == b"not filegate's"


def test_local_symlinked_object_is_refused(local: LocalStorage, root: Path) -> None:
    """Even one pointing at another object of the area: filegate never makes links."""
    key, other = new_id(), new_id()
    put(local, Q, other, b"another file's bytes")
    shard = root / "quarantine" / key[-2:]
    shard.mkdir(exist_ok=True)
    (shard / key).symlink_to(root / "quarantine" / other[-2:] / other)
    for call in CALLS.values():
        with raises_storage_error(match="escapes the quarantine area"):
            call(local, key)
    assert get(local, Q, other) == b"another file's bytes"


def test_local_errors_do_not_reveal_paths(local: LocalStorage, root: Path) -> None:
    key = new_id()
    (root / "quarantine" / key[-2:]).write_bytes(b"a file where the shard directory belongs")
    failures: list[Callable[[], object]] = [
        lambda: local.size(Q, new_id()),
        lambda: get(local, C, new_id()),
        lambda: local.move(Q, C, new_id()),
        lambda: put(local, Q, key, b"x"),
        lambda: LocalStorage(root / "quarantine" / key[-2:]),
    ]
    for failure in failures:
        with raises_storage_error() as info:
            failure()
        text = f"{info.value} {info.value.extra}"
        assert str(root.parent) not in text, text
        assert info.value.__cause__ is None


def test_local_read_fails_before_streaming(local: LocalStorage) -> None:
    with raises_storage_error():
        local.read(Q, new_id())


# --- S3 only ------------------------------------------------------------------------------------


class _PartTrouble:
    """The real SeaweedFS client, with ``upload_part`` slowed down and failing from part
    ``fail_from`` on (a network that went away while parts were on their way)."""

    def __init__(self, client: object, *, delay: float = 0.0, fail_from: int = 0) -> None:
        self._client = client
        self.delay = delay
        self.fail_from = fail_from
        self.landed: list[int] = []

    def upload_part(self, **kwargs: object) -> object:
        time.sleep(self.delay)
        number = kwargs["PartNumber"]
        assert isinstance(number, int)
        if self.fail_from and number >= self.fail_from:
            raise s3.BotoCoreError()
        answer = self._client.upload_part(**kwargs)  # type: ignore[attr-defined]
        self.landed.append(number)
        return answer

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def _troubled_s3(request: pytest.FixtureRequest, trouble: _PartTrouble) -> S3Storage:
    storage = _s3(request)
    assert isinstance(storage, S3Storage)
    return S3Storage(trouble, storage.bucket, f"t-{uuid.uuid4().hex}")  # type: ignore[arg-type]


def test_s3_reading_a_whole_object_is_one_request(request: pytest.FixtureRequest) -> None:
    """The inspection's copy and a whole download: a GET, no HEAD for the size first."""
    storage = _s3(request)
    assert isinstance(storage, S3Storage)
    key = new_id()
    put(storage, Q, key, b"the bytes")
    with s3_requests(storage.client) as calls:
        assert get(storage, Q, key) == b"the bytes"
    assert calls == ["GetObject"]


def test_s3_a_part_that_fails_on_its_way_fails_the_sync(
    request: pytest.FixtureRequest, small_parts: int
) -> None:
    """Parts go to S3 while the next one fills: a part refused meanwhile surfaces at ``sync``
    (before the caller advances the offset), and the upload reopens at its last offset."""
    trouble = _PartTrouble(request.getfixturevalue("s3_server").client())
    storage = _troubled_s3(request, trouble)
    key = new_id()
    kept = os.urandom(small_parts + 3)
    append(storage, key, 0, kept)
    trouble.fail_from = 3
    appender = storage.appender(U, key, len(kept))
    with raises_storage_error():
        # The failure may surface while writing (too many parts waiting) or at the sync.
        appender.write(os.urandom(3 * small_parts))
        appender.sync()
    appender.close()
    trouble.fail_from = 0
    rest = os.urandom(2 * small_parts + 9)
    append(storage, key, len(kept), rest)
    storage.seal(U, key, len(kept) + len(rest))
    assert get(storage, U, key) == kept + rest


def test_s3_close_waits_for_the_parts_on_their_way(
    request: pytest.FixtureRequest, small_parts: int
) -> None:
    """No part of a closed appender may land later: it could overwrite the part of the same
    number that the next request sends."""
    trouble = _PartTrouble(request.getfixturevalue("s3_server").client(), delay=0.3)
    storage = _troubled_s3(request, trouble)
    appender = storage.appender(U, new_id(), 0)
    appender.write(os.urandom(2 * small_parts))
    appender.close()
    assert sorted(trouble.landed) == [1, 2]
