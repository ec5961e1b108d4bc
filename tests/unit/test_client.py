"""The client's protocol core, driven by a scripted server: retries, resync, resume, errors.

The core is sans-IO, so these tests answer its requests from a table and record every sleep,
instead of waiting for real backoff delays. The live-server tests are in tests/e2e.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from filegate.client import (
    ApiError,
    AsyncClient,
    Client,
    IntegrityError,
    ResumeStore,
    RetriesExhausted,
    RetryPolicy,
    UploadGone,
    _api,
    _tus,
)
from filegate.client._calls import Session
from filegate.client._effects import (
    Blocking,
    Failure,
    Reply,
    Request,
    Send,
    Sink,
    Sleep,
    Steps,
    Stream,
)
from filegate.client.retry import parse_retry_after
from filegate.client.store import fingerprint, store_key
from tests.unit.test_architecture import import_graph, within

BASE = "http://filegate.test"
UPLOAD_ID = "01JF3M8C6Q2B7W0RJ5X8Y9Z1AB"
UPLOAD_URL = f"{BASE}/v1/tus/{UPLOAD_ID}"
CHUNK = 1000
Answer = Reply | Failure
T = TypeVar("T")


def problem(status: int, code: str, **headers: str) -> Reply:
    body = json.dumps({"status": status, "code": code, "detail": f"{code} happened"}).encode()
    return Reply(status, {"content-type": "application/problem+json", **headers}, body)


def created() -> Reply:
    return Reply(201, {"location": f"http://elsewhere.example/v1/tus/{UPLOAD_ID}"})


def accepted(offset: int) -> Reply:
    return Reply(204, {"upload-offset": str(offset)})


def head(offset: int, length: int) -> Reply:
    return Reply(200, {"upload-offset": str(offset), "upload-length": str(length)})


class Killed(Exception):
    pass


def crash(request: Request) -> Answer:
    raise Killed


class Script:
    """Answers requests in order; records every request and every sleep."""

    def __init__(self, *answers: Answer | Callable[[Request], Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []
        self.sleeps: list[float] = []

    def drive(self, steps: Steps[T]) -> T:
        answer: object = None
        while True:
            try:
                effect = steps.send(answer)
            except StopIteration as done:
                result: T = done.value
                return result
            answer = None
            if isinstance(effect, Send):
                self.requests.append(effect.request)
                step = self.answers.pop(0)
                answer = step(effect.request) if callable(step) else step
                if effect.request.on_sent is not None and isinstance(answer, Reply):
                    effect.request.on_sent(len(effect.request.body or b""))
            elif isinstance(effect, Stream):
                self.requests.append(effect.request)
                answer = self.answers.pop(0)(effect.request, effect.sink)  # type: ignore[operator]
            elif isinstance(effect, Sleep):
                self.sleeps.append(effect.seconds)
            elif isinstance(effect, Blocking):
                answer = effect.call()

    def calls(self) -> list[str]:
        return [f"{r.method} {r.headers.get('Upload-Offset', '')}".strip() for r in self.requests]


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client made without a store must not write to the real ~/.cache."""
    monkeypatch.setenv("FILEGATE_RESUME_STORE", str(tmp_path / "default-store.json"))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(2500))
    return path


def header_of(path: Path) -> str:
    return _tus.metadata_header(path.name, None, {})


@pytest.fixture
def job() -> Iterator[Callable[..., _tus.UploadJob]]:
    """Makes upload jobs whose files are closed after the test."""
    sources: list[_tus.Source] = []

    def make(
        path: Path, store: ResumeStore | None = None, progress: _tus.Progress | None = None
    ) -> _tus.UploadJob:
        sources.append(_tus.Source.open(path))
        return _tus.UploadJob(sources[-1], header_of(path), CHUNK, progress, store)

    yield make
    for source in sources:
        source.close()


def session(attempts: int = 4) -> Session:
    return Session(BASE, RetryPolicy(attempts=attempts, base_delay=1.0, max_delay=8.0))


def test_an_upload_creates_then_patches_chunks_with_sha256_checksums(
    job: Callable[..., _tus.UploadJob], data_file: Path
) -> None:
    script = Script(created(), accepted(1000), accepted(2000), accepted(2500))
    progress: list[tuple[int, int]] = []
    result = script.drive(
        _tus.upload(session(), job(data_file, progress=lambda s, t: progress.append((s, t))))
    )
    data = data_file.read_bytes()
    assert script.calls() == ["POST", "PATCH 0", "PATCH 1000", "PATCH 2000"]
    create = script.requests[0]
    assert create.url == f"{BASE}/v1/tus/"
    assert create.headers["Upload-Length"] == "2500"
    assert create.headers["Upload-Metadata"] == "filename " + base64.b64encode(b"data.bin").decode()
    # The Location named another host: the token still goes only to the configured server.
    assert script.requests[1].url == UPLOAD_URL
    checksum = base64.b64encode(hashlib.sha256(data[1000:2000]).digest()).decode()
    assert script.requests[2].headers["Upload-Checksum"] == f"sha256 {checksum}"
    assert script.requests[2].headers["Content-Type"] == "application/offset+octet-stream"
    assert result.file_id == UPLOAD_ID
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (result.bytes_sent, result.resumed_from, result.retries) == (2500, 0, 0)
    assert progress[-1] == (2500, 2500)


def test_a_cut_patch_is_retried_after_a_backoff_from_the_offset_head_reports(
    job: Callable[..., _tus.UploadJob],
    data_file: Path,
) -> None:
    # The server kept 400 bytes of the cut PATCH: the client goes on from 400, not 0 or 1000.
    cut = Failure(httpx.ReadError("connection reset"))
    script = Script(created(), cut, head(400, 2500), accepted(1400), accepted(2400), accepted(2500))
    result = script.drive(_tus.upload(session(), job(data_file)))
    assert script.calls() == ["POST", "PATCH 0", "HEAD", "PATCH 400", "PATCH 1400", "PATCH 2400"]
    assert len(script.sleeps) == 1
    assert 0 <= script.sleeps[0] <= 1.0
    assert result.sha256 == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert result.retries == 1


def test_an_offset_mismatch_resyncs_at_once_and_a_checksum_mismatch_is_retried(
    job: Callable[..., _tus.UploadJob],
    data_file: Path,
) -> None:
    script = Script(
        created(),
        problem(409, "tus_offset_mismatch"),
        head(1000, 2500),
        problem(460, "tus_checksum_mismatch"),
        head(1000, 2500),
        accepted(2000),
        accepted(2500),
    )
    script.drive(_tus.upload(session(), job(data_file)))
    assert script.calls() == [
        "POST",
        *("PATCH 0", "HEAD"),
        *("PATCH 1000", "HEAD"),
        *("PATCH 1000", "PATCH 2000"),
    ]
    assert len(script.sleeps) == 1  # only the 460 waits


def test_retry_after_is_honoured_and_backoff_grows(
    job: Callable[..., _tus.UploadJob], data_file: Path
) -> None:
    script = Script(
        problem(503, "server_busy", **{"retry-after": "7"}),
        problem(429, "rate_limited"),
        problem(502, "bad_gateway"),
        created(),
        accepted(1000),
        accepted(2000),
        accepted(2500),
    )
    script.drive(_tus.upload(session(), job(data_file)))
    assert script.sleeps[0] == 7.0
    assert 0 <= script.sleeps[1] <= 2.0
    assert 0 <= script.sleeps[2] <= 4.0


def test_transient_failures_give_up_after_the_policy_s_attempts(
    job: Callable[..., _tus.UploadJob], data_file: Path
) -> None:
    busy = problem(503, "server_busy")
    script = Script(busy, busy, busy)
    with pytest.raises(RetriesExhausted) as raised:
        script.drive(_tus.upload(session(attempts=3), job(data_file)))
    assert isinstance(raised.value.last, ApiError)
    assert raised.value.last.code == "server_busy"
    assert len(script.sleeps) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "unknown_profile"),
        (401, "unauthenticated"),
        (403, "forbidden"),
        (413, "file_too_large"),
        (415, "tus_content_type"),
        (422, "invalid_request"),
    ],
)
def test_a_4xx_is_raised_at_once_with_the_server_s_problem(
    job: Callable[..., _tus.UploadJob], data_file: Path, status: int, code: str
) -> None:
    script = Script(problem(status, code))
    with pytest.raises(ApiError) as raised:
        script.drive(_tus.upload(session(), job(data_file)))
    assert (raised.value.status, raised.value.code) == (status, code)
    assert raised.value.problem["detail"] == f"{code} happened"
    assert script.sleeps == []


def test_an_upload_that_vanishes_mid_way_is_upload_gone(
    job: Callable[..., _tus.UploadJob], data_file: Path
) -> None:
    script = Script(created(), problem(404, "tus_upload_not_found"))
    with pytest.raises(UploadGone):
        script.drive(_tus.upload(session(), job(data_file)))


def test_a_rerun_resumes_from_the_server_s_offset(
    job: Callable[..., _tus.UploadJob], data_file: Path, tmp_path: Path
) -> None:
    store = ResumeStore(tmp_path / "store.json")
    first = Script(created(), accepted(1000), crash)
    with pytest.raises(Killed):  # the process "dies" mid-upload
        first.drive(_tus.upload(session(), job(data_file, store)))
    assert len(store.entries()) == 1
    second = Script(head(1000, 2500), accepted(2000), accepted(2500))
    result = second.drive(_tus.upload(session(), job(data_file, store)))
    assert second.calls() == ["HEAD", "PATCH 1000", "PATCH 2000"]
    assert (result.resumed_from, result.bytes_sent) == (1000, 1500)
    assert result.sha256 == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert store.entries() == {}  # finished: forgotten


@pytest.mark.parametrize(
    "answer", [problem(404, "tus_upload_not_found"), problem(410, "tus_upload_gone")]
)
def test_a_remembered_upload_that_is_gone_starts_over(
    job: Callable[..., _tus.UploadJob], data_file: Path, tmp_path: Path, answer: Reply
) -> None:
    store = ResumeStore(tmp_path / "store.json")
    key = store_key(BASE, fingerprint(data_file), header_of(data_file))
    store.put(key, UPLOAD_URL)
    script = Script(answer, created(), accepted(1000), accepted(2000), accepted(2500))
    result = script.drive(_tus.upload(session(), job(data_file, store)))
    assert script.calls()[:2] == ["HEAD", "POST"]
    assert result.resumed_from == 0


def test_a_changed_file_is_not_resumed(
    job: Callable[..., _tus.UploadJob], data_file: Path, tmp_path: Path
) -> None:
    store = ResumeStore(tmp_path / "store.json")
    before = fingerprint(data_file)
    data_file.write_bytes(b"x" + data_file.read_bytes()[1:])
    os.utime(data_file, ns=(1, 1))
    assert fingerprint(data_file) != before
    store.put(store_key(BASE, before, header_of(data_file)), UPLOAD_URL)
    script = Script(created(), accepted(1000), accepted(2000), accepted(2500))
    script.drive(_tus.upload(session(), job(data_file, store)))
    assert script.calls()[0] == "POST"


def test_metadata_keys_must_be_tokens() -> None:
    assert _tus.metadata_header("a b.txt", "images", {"user": "ü"}) == ",".join(
        [
            "filename " + base64.b64encode(b"a b.txt").decode(),
            "profile " + base64.b64encode(b"images").decode(),
            "user " + base64.b64encode("ü".encode()).decode(),
        ]
    )
    with pytest.raises(ValueError, match="not a token"):
        _tus.metadata_header("a.txt", None, {"bad key": "v"})


def test_retry_after_parses_seconds_and_dates() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_delay_is_jittered_below_a_doubling_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    for failures, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (9, 4.0)]:
        assert all(0 <= policy.delay(failures) <= cap for _ in range(50))
    assert policy.delay(1, retry_after=1000) == policy.max_retry_after


# Downloads


def body(reply: Reply, data: bytes, cut: bool = False) -> Callable[[Request, Sink], Answer]:
    """A streamed answer: ``reply``'s head, then ``data``; with ``cut``, the connection drops."""

    def answer(request: Request, sink: Sink) -> Answer:
        sink.begin(reply)
        sink.write(data)
        return Failure(httpx.ReadError("cut")) if cut else reply

    return answer


def test_a_cut_download_continues_with_range_and_lands_whole(tmp_path: Path) -> None:
    data = os.urandom(5000)
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    full = Reply(200, {"etag": etag, "content-length": "5000"})
    rest = Reply(206, {"etag": etag, "content-range": "bytes 3000-4999/5000"})
    script = Script(body(full, data[:3000], cut=True), body(rest, data[3000:]))
    dest = tmp_path / "copy.bin"
    assert script.drive(_api.download(session(), UPLOAD_ID, dest)) == dest
    assert dest.read_bytes() == data
    assert script.requests[0].headers == {}
    assert script.requests[1].headers == {"Range": "bytes=3000-", "If-Range": etag}
    assert [p.name for p in tmp_path.iterdir()] == ["copy.bin"]


def test_a_download_that_does_not_match_its_etag_leaves_nothing(tmp_path: Path) -> None:
    etag = f'"{hashlib.sha256(b"expected").hexdigest()}"'
    script = Script(body(Reply(200, {"etag": etag}), b"tampered"))
    with pytest.raises(IntegrityError):
        script.drive(_api.download(session(), UPLOAD_ID, tmp_path / "copy.bin"))
    assert list(tmp_path.iterdir()) == []


def test_a_refused_download_is_an_api_error(tmp_path: Path) -> None:
    def refused(request: Request, sink: Sink) -> Answer:
        return problem(403, "file_rejected")

    with pytest.raises(ApiError) as raised:
        Script(refused).drive(_api.download(session(), UPLOAD_ID, tmp_path / "copy.bin"))
    assert raised.value.code == "file_rejected"
    assert list(tmp_path.iterdir()) == []


# The resume store


def _put_many(path: str, prefix: str, count: int) -> None:
    store = ResumeStore(path)
    for n in range(count):
        store.put(f"{prefix}{n}", f"{BASE}/v1/tus/{prefix}{n}")


def test_two_processes_writing_the_store_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "cache" / "uploads.json")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_put_many, args=(path, p, 40)) for p in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    entries = ResumeStore(path).entries()
    assert len(entries) == 80
    assert not [p for p in Path(path).parent.iterdir() if p.name.startswith(".uploads-")]


def test_an_unreadable_store_is_empty_and_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "uploads.json"
    path.write_text("{not json")
    store = ResumeStore(path)
    assert store.get("k") is None
    store.put("k", UPLOAD_URL, label="x")
    assert json.loads(path.read_text())["uploads"]["k"]["url"] == UPLOAD_URL
    assert (path.stat().st_mode & 0o777) == 0o600


def test_the_store_path_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FILEGATE_RESUME_STORE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ResumeStore().path == tmp_path / "filegate" / "uploads.json"
    monkeypatch.setenv("FILEGATE_RESUME_STORE", str(tmp_path / "mine.json"))
    assert ResumeStore().path == tmp_path / "mine.json"


# Over httpx, with a mock transport: the drivers and the calls without a live route.


def test_create_upload_token_posts_the_grant_and_reads_the_answer(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        answer = {
            "id": "01JF3M8C6Q2B7W0RJ5X8Y9Z1AC",
            "token": "fgt_secret",
            "tenant": "acme",
            "max_size": 20 * 1024 * 1024,
            "expires_at": "2026-12-06T22:00:00Z",
            **body,
        }
        return httpx.Response(201, json=answer)

    client = Client(
        BASE, "fgk_key", transport=httpx.MockTransport(handler), resume_store=tmp_path / "s"
    )
    with client:
        grant = client.create_upload_token(
            profile="images", max_files=3, metadata={"user": "42"}, expires_in=900
        )
    assert seen[0].url == f"{BASE}/v1/upload-tokens"
    assert seen[0].headers["authorization"] == "Bearer fgk_key"
    assert json.loads(seen[0].content) == {
        "profile": "images",
        "max_files": 3,
        "metadata": {"user": "42"},
        "expires_in": 900,
    }
    assert (grant.token, grant.profile, grant.max_files, grant.max_size) == (
        "fgt_secret",
        "images",
        3,
        20 * 1024 * 1024,
    )
    assert grant.metadata == {"user": "42"}
    assert "fgt_secret" not in repr(grant)


def tus_handler(request: httpx.Request) -> httpx.Response:
    """A tus server in a few lines: creates one upload and accepts every PATCH whole."""
    if request.method == "POST":
        return httpx.Response(201, headers={"Location": UPLOAD_URL})
    offset = int(request.headers["upload-offset"]) + len(request.read())
    return httpx.Response(204, headers={"Upload-Offset": str(offset)})


def shrink_after_first_chunk(path: Path) -> Callable[[int, int], None]:
    def progress(sent: int, total: int) -> None:
        if sent == CHUNK:
            path.write_bytes(b"short")

    return progress


def test_both_drivers_raise_a_failed_read_inside_the_core(tmp_path: Path) -> None:
    # Past the reader's 8 KiB buffer, so a read after the truncation really finds no bytes.
    path = tmp_path / "big.bin"
    original = os.urandom(40_000)
    store = tmp_path / "store.json"

    def upload_sync() -> None:
        transport = httpx.MockTransport(tus_handler)
        with Client(BASE, "k", transport=transport, resume_store=store) as client:
            client.upload(path, chunk_size=CHUNK, progress=shrink_after_first_chunk(path))

    async def upload_async() -> None:
        transport = httpx.MockTransport(tus_handler)
        async with AsyncClient(BASE, "k", transport=transport, resume_store=store) as client:
            await client.upload(path, chunk_size=CHUNK, progress=shrink_after_first_chunk(path))

    path.write_bytes(original)
    with pytest.raises(ValueError, match="shrank"):
        upload_sync()
    path.write_bytes(original)
    with pytest.raises(ValueError, match="shrank"):
        asyncio.run(upload_async())


def test_a_file_object_uploads_with_either_driver_and_is_never_remembered(
    data_file: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store.json"

    async def upload_async() -> str:
        transport = httpx.MockTransport(tus_handler)
        async with AsyncClient(BASE, "k", transport=transport, resume_store=store) as client:
            with data_file.open("rb") as file:
                return (await client.upload(file, chunk_size=CHUNK)).sha256

    client = Client(BASE, "k", transport=httpx.MockTransport(tus_handler), resume_store=store)
    with client, data_file.open("rb") as file:
        sha256 = client.upload(file, chunk_size=CHUNK).sha256
    assert sha256 == asyncio.run(upload_async())
    assert sha256 == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert not store.exists()  # no path, no fingerprint: nothing to resume by


# httpx itself imports rich and click when its CLI extra is installed, so they are not listed.
SERVER_ONLY = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "pydantic_settings",
    "magika",
    "onnxruntime",
    "PIL",
    "pikepdf",
    "av",
    "oletools",
    "huey",
    "redis",
    "boto3",
    "structlog",
    "typer",
    "uvicorn",
    "filegate.web",
    "filegate.db",
    "filegate.inspect",
    "filegate.services",
    "filegate.jobs",
    "filegate.storage",
    "filegate.config",
    "filegate.cli",
)


def test_the_client_imports_none_of_the_server() -> None:
    code = (
        "import sys, json, filegate.client, filegate.client._drivers\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert "filegate.client._tus" in loaded
    heavy = [m for m in loaded if any(m == s or m.startswith(s + ".") for s in SERVER_ONLY)]
    assert heavy == []


def test_the_client_package_imports_only_the_shared_vocabulary() -> None:
    # Checked in the source too: a lazy import inside a function escapes the subprocess check.
    allowed = {"filegate", "filegate.domain", "filegate.errors"}
    graph = import_graph()
    bad = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if within(module, "filegate.client")
        for target in targets
        if target not in allowed and not within(target, "filegate.client")
    )
    assert "filegate.client._tus" in graph
    assert bad == []
