"""filegate.client and `filegate upload` against a running server: round trips, a network
cut mid-PATCH, typed refusals, and a 1 GiB upload killed half-way and resumed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from filegate.client import (
    ApiError,
    AsyncClient,
    Client,
    FileState,
    ResumeStore,
    RetryPolicy,
)
from tests.e2e.live import (
    MIB,
    LiveServer,
    TextPayload,
    profiles_env,
    tus_offset,
    wait_for,
)
from tests.support.proxy import TcpProxy
from tests.support.samples import HTML

GIB = 1024 * MIB
BIG_PROFILE = {"extensions": ["bin"], "types": ["application/octet-stream"], "max_size": 2 * GIB}
SMALL_PROFILE = {"extensions": ["txt"], "types": ["text/plain"], "max_size": MIB}
# Quick retries: the tests cut the network for a fraction of a second, not for minutes.
FAST_RETRY = RetryPolicy(attempts=10, base_delay=0.1, max_delay=1.0)
SENT_RE = re.compile(r"sent (\d+) bytes(?: \(resumed at byte (\d+) of (\d+)\))?")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module (a start costs seconds), on SQLite only: the client sees the
    same HTTP API on every database backend. Each test uses its own key."""
    root = tmp_path_factory.mktemp("server")
    env = profiles_env(big=BIG_PROFILE, small=SMALL_PROFILE)
    with LiveServer(root, f"sqlite:///{root / 'filegate.db'}", env) as live:
        yield live


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client made without a store must not write to the real ~/.cache."""
    monkeypatch.setenv("FILEGATE_RESUME_STORE", str(tmp_path / "default-store.json"))


def text_file(path: Path, size: int) -> str:
    """Text the inspectors pass as clean, written to ``path``; returns its sha256."""
    payload = TextPayload(size)
    payload.write_to(path)
    return payload.sha256()


def random_file(path: Path, size: int) -> str:
    """``size`` incompressible bytes, made 1 MiB at a time; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as file:
        # libmagic takes random leading bytes for a DOS program in ~2% of runs (test_memory).
        head = bytes(64 * 1024)
        file.write(head)
        digest.update(head)
        for start in range(len(head), size, MIB):
            block = os.urandom(min(MIB, size - start))
            file.write(block)
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def test_upload_verdict_and_download_round_trip(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    sha256 = text_file(source, 5 * MIB + 123)
    progress: list[tuple[int, int]] = []
    key = server.create_key("tenant-a")
    with Client(server.base_url, key, resume_store=tmp_path / "store.json") as client:
        upload = client.upload(
            source,
            chunk_size=2 * MIB,
            metadata={"ticket": "T-1"},
            progress=lambda sent, total: progress.append((sent, total)),
        )
        file = client.wait_for_verdict(upload.file_id, timeout=60)
        copy = client.download(file.id, tmp_path / "copy.txt")
        link = client.create_link(file.id, seconds=600, max_downloads=1)
    assert (upload.sha256, file.sha256, sha256_of(copy)) == (sha256, sha256, sha256)
    assert file.state is FileState.CLEAN
    assert (file.name, file.size, file.findings) == ("report.txt", 5 * MIB + 123, ())
    assert progress[-1] == (5 * MIB + 123, 5 * MIB + 123)
    assert link.url.startswith(server.base_url + f"/v1/share/{file.id}/")
    assert ResumeStore(tmp_path / "store.json").entries() == {}


def test_async_upload_verdict_and_download_round_trip(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    sha256 = text_file(source, 3 * MIB + 7)
    key = server.create_key("tenant-a")

    async def round_trip() -> tuple[str, FileState, str]:
        store = tmp_path / "store.json"
        async with AsyncClient(server.base_url, key, resume_store=store) as client:
            upload = await client.upload(source, chunk_size=MIB)
            file = await client.wait_for_verdict(upload.file_id, timeout=60)
            copy = await client.download(file.id, tmp_path / "copy.txt")
        return upload.sha256, file.state, sha256_of(copy)

    assert asyncio.run(round_trip()) == (sha256, FileState.CLEAN, sha256)


def test_a_network_cut_mid_patch_is_retried_and_the_upload_completes(
    server: LiveServer, tmp_path: Path
) -> None:
    size = 24 * MIB
    source = tmp_path / "notes.txt"
    sha256 = text_file(source, size)
    key = server.create_key("tenant-a")
    cuts: list[int] = []
    proxy = CountingProxy(server.port)
    restore = threading.Timer(0.5, proxy.set_mode, ("pass",))

    def cut_once(sent: int, total: int) -> None:
        if not cuts and sent > 10 * MIB:  # inside the second 8 MiB PATCH
            cuts.append(sent)
            proxy.set_mode("cut")  # every connection closed, new ones refused, for 0.5 s
            restore.start()

    try:
        url = f"http://127.0.0.1:{proxy.port}"
        with Client(url, key, retry=FAST_RETRY, resume_store=tmp_path / "s.json") as client:
            upload = client.upload(source, progress=cut_once)
            file = client.wait_for_verdict(upload.file_id, timeout=60)
            copy = client.download(file.id, tmp_path / "copy.txt")
    finally:
        restore.join(5)
        proxy.close()
    print(f"cut at {cuts[0]} bytes; {upload.retries} retries, {upload.bytes_sent} bytes sent")
    assert upload.retries >= 1
    assert upload.bytes_sent > size  # part of the cut PATCH went twice
    assert (upload.sha256, file.sha256, sha256_of(copy)) == (sha256, sha256, sha256)


def test_an_interrupted_upload_resumes_in_a_new_client(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    sha256 = text_file(source, 6 * MIB)
    store = tmp_path / "store.json"
    key = server.create_key("tenant-a")

    class Crash(Exception):
        pass

    def crash_after_half(sent: int, total: int) -> None:
        if sent >= total // 2:
            raise Crash

    with Client(server.base_url, key, resume_store=store) as client:
        with pytest.raises(Crash):
            client.upload(source, chunk_size=MIB, progress=crash_after_half)
        (entry,) = ResumeStore(store).entries().values()
        with server.client(key) as http:
            reached = tus_offset(http, entry["url"])
        upload = client.upload(source, chunk_size=MIB)
    assert 0 < reached < 6 * MIB
    assert upload.resumed_from == reached
    assert upload.bytes_sent == 6 * MIB - reached
    assert upload.sha256 == sha256


def test_refusals_are_typed_errors_with_the_server_s_code(
    server: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "notes.txt"
    text_file(source, 2 * MIB)
    page = tmp_path / "page.txt"
    page.write_bytes(HTML)
    key = server.create_key("tenant-a")
    with Client(server.base_url, key, resume_store=tmp_path / "s.json") as client:
        with pytest.raises(ApiError) as too_large:
            client.upload(source, profile="small")
        with pytest.raises(ApiError) as unknown:
            client.upload(source, profile="no-such-profile")
        rejected = client.wait_for_verdict(client.upload(page).file_id, timeout=60)
        with pytest.raises(ApiError) as not_served:
            client.download(rejected.id, tmp_path / "page-copy.txt")
    stranger = Client(server.base_url, "fgk_not-a-key", resume_store=tmp_path / "s.json")
    with stranger, pytest.raises(ApiError) as unauthenticated:
        stranger.upload(source)
    read_only = server.create_key("tenant-a", scopes="read")
    reader = Client(server.base_url, read_only, resume_store=tmp_path / "s.json")
    with reader, pytest.raises(ApiError) as forbidden:
        reader.upload(source)
    answers = [
        (e.value.status, e.value.code)
        for e in (too_large, unknown, not_served, unauthenticated, forbidden)
    ]
    assert answers == [
        (413, "file_too_large"),
        (400, "unknown_profile"),
        (403, "file_rejected"),
        (401, "unauthenticated"),
        (403, "forbidden"),
    ]
    assert too_large.value.problem["type"] == "urn:filegate:problem:file_too_large"
    assert rejected.state is FileState.REJECTED
    assert rejected.findings
    assert not list(tmp_path.glob(".page-copy.txt.*"))  # no temp file left behind


def test_an_upload_token_minted_by_the_client_uploads_within_its_grant(
    server: LiveServer, tmp_path: Path
) -> None:
    first, second, third = (tmp_path / f"{n}.txt" for n in ("one", "two", "three"))
    sha256 = text_file(first, MIB)
    text_file(second, MIB)
    text_file(third, MIB)
    key = server.create_key("tenant-t", scopes="upload")
    store = tmp_path / "store.json"
    with Client(server.base_url, key, resume_store=store) as backend:
        grant = backend.create_upload_token(
            profile="default", max_files=2, metadata={"user": "42"}, expires_in=600
        )
    assert grant.token.startswith("fgt_")
    assert (grant.tenant, grant.profile, grant.max_files) == ("tenant-t", "default", 2)
    assert grant.metadata == {"user": "42"}
    with Client(server.base_url, grant.token, resume_store=store) as browser:
        upload = browser.upload(first, metadata={"user": "mallory"})
        file = browser.wait_for_verdict(upload.file_id, timeout=60)
        copy = browser.download(file.id, tmp_path / "copy.txt")
        with pytest.raises(ApiError) as other_profile:
            browser.upload(second, profile="media")
        with pytest.raises(ApiError) as no_links:
            browser.create_link(file.id)
        browser.upload(second)
        with pytest.raises(ApiError) as used_up:
            browser.upload(third)
    assert (file.state, file.uploaded_by, sha256_of(copy)) == (FileState.CLEAN, grant.id, sha256)
    assert (other_profile.value.status, other_profile.value.code) == (403, "forbidden")
    assert (no_links.value.status, no_links.value.code) == (403, "forbidden")
    assert (used_up.value.status, used_up.value.code) == (403, "upload_token_used_up")


def test_cli_exits_1_and_shows_the_findings_of_a_rejected_file(
    server: LiveServer, tmp_path: Path
) -> None:
    page, notes = tmp_path / "page.txt", tmp_path / "notes.txt"
    page.write_bytes(HTML)
    text_file(notes, 100_000)
    key = server.create_key("tenant-a")
    output = tmp_path / "cli.out"
    run = cli(
        server.base_url, key, tmp_path / "store.json", output, "--wait", str(notes), str(page)
    )
    assert run.wait(120) == 1, output.read_text()
    text = output.read_text()
    print(text)
    assert re.search(r"notes\.txt\s*│\s*\w{26}\s*│\s*clean", text)
    assert re.search(r"page\.txt\s*│\s*\w{26}\s*│\s*rejected\s*│\s*\w+", text)


def test_cli_without_a_token_is_a_usage_error(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello\n")
    output = tmp_path / "cli.out"
    run = cli("http://127.0.0.1:9", "", tmp_path / "store.json", output, str(source))
    assert run.wait(60) == 2
    assert "FILEGATE_TOKEN" in output.read_text()


# `filegate upload`, the "done when": 1 GiB, killed half-way, run again.


class CountingProxy(TcpProxy):
    """A pass-through proxy that counts the bytes clients send (requests, bodies and all)."""

    def __init__(self, port: int) -> None:
        self.upstream_bytes = 0
        self.open_connections = 0
        self._count_lock = threading.Lock()
        super().__init__("127.0.0.1", port)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with self._count_lock:
            self.open_connections += 1
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for source in readable:
                    data = source.recv(1024 * 1024)
                    if not data:
                        return
                    if source is client:
                        with self._count_lock:
                            self.upstream_bytes += len(data)
                    peers[source].sendall(data)
        except (OSError, ValueError):  # ValueError: select on a socket "cut" just closed
            return
        finally:
            client.close()
            upstream.close()
            with self._count_lock:
                self.open_connections -= 1


def cli(url: str, key: str, store: Path, output: Path, *args: str) -> subprocess.Popen[bytes]:
    """``filegate upload --url URL ARGS`` in its own process group, output to ``output``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}
    env |= {"FILEGATE_TOKEN": key, "FILEGATE_RESUME_STORE": str(store), "COLUMNS": "200"}
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "filegate", "upload", "--url", url, *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def remembered_url(store: Path) -> str | None:
    entries = ResumeStore(store).entries()
    return next(iter(entries.values()))["url"] if entries else None


@pytest.mark.slow
def test_cli_upload_of_1_gib_killed_half_way_resumes_and_prints_the_verdict(
    server: LiveServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    source = tmp_path / "big.bin"
    sha256 = random_file(source, GIB)
    made = time.monotonic()
    key = server.create_key("tenant-a")
    store = tmp_path / "uploads.json"
    proxy = CountingProxy(server.port)
    url = f"http://127.0.0.1:{proxy.port}"
    # 32 MiB PATCHes last long enough (~0.5 s here) for the kill to land inside one.
    args = ("--profile", "big", "--chunk-size", "32", "--wait", "--timeout", "120", str(source))
    try:
        first = cli(url, key, store, tmp_path / "first.out", *args)
        try:
            wait_for(lambda: remembered_url(store) is not None, 30.0, "the upload to be created")
            upload_url = remembered_url(store)
            assert upload_url is not None
            with server.client(key) as http:

                def half_way_and_mid_patch() -> bool:
                    offset = tus_offset(http, upload_url)
                    return offset >= GIB // 2 and proxy.upstream_bytes >= offset + 8 * MIB

                wait_for(half_way_and_mid_patch, 60.0, "half the bytes, and a PATCH under way")
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(10)
                # What the dead client left in the pipes still reaches the server: let it, so
                # the second run is counted alone.
                wait_for(lambda: proxy.open_connections == 0, 30.0, "the proxy to drain")
                offset = tus_offset(http, upload_url)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        killed = time.monotonic()
        first_sent = proxy.upstream_bytes
        proxy.upstream_bytes = 0
        second = cli(url, key, store, tmp_path / "second.out", *args)
        second.wait(180)
    finally:
        proxy.close()
    done = time.monotonic()
    output = (tmp_path / "second.out").read_text()
    print(output)
    print(
        f"1 GiB made in {made - started:.1f}s; killed after {killed - made:.1f}s with "
        f"{first_sent} bytes through the proxy, at offset {offset}; the second run sent "
        f"{proxy.upstream_bytes} bytes in {done - killed:.1f}s"
    )
    assert second.returncode == 0, output
    sent = SENT_RE.search(output)
    assert sent is not None, output
    sent_bytes, resumed, total = int(sent[1]), int(sent[2] or 0), int(sent[3] or 0)
    # Bytes already in the pipes when the client died can still complete its last PATCH, so
    # the server may be past the offset read just after the kill: never behind it.
    assert GIB // 2 <= offset <= resumed < GIB
    assert (sent_bytes, total) == (GIB - resumed, GIB)
    # The second run sent the rest and a few kB of requests, not the whole gigabyte again.
    assert GIB - resumed <= proxy.upstream_bytes < GIB - resumed + MIB
    verdict = re.search(rf"{re.escape(str(source))}\s*│\s*(\w+)\s*│\s*(\w+)", output)
    assert verdict is not None, output
    assert verdict[2] == "clean"
    with server.client(key) as http:
        record = http.get(f"/v1/files/{verdict[1]}").json()
    assert record["received_sha256"] == sha256
    assert remembered_url(store) is None
    assert json.loads(store.read_text())["uploads"] == {}
