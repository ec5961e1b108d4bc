"""tus under crashes and contention: a killed server keeps its durable offset, and a stalled
request never blocks the upload, the event loop, or (beyond the lock wait) another process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from tusclient import client as tus

from tests.e2e.live import (
    MIB,
    OFFSET_OCTET_STREAM,
    TUS_BASE,
    LiveServer,
    TextPayload,
    clean_sha256,
    open_patch,
    profiles_env,
    read_response,
    tus_create,
    tus_headers,
    tus_offset,
    upload_id_of,
    wait_for,
)

T = TypeVar("T")

# The server's SYNC_EVERY (services/ingest.py): a long PATCH is durable at every multiple of it.
CHECKPOINT = 64 * MIB
BIG = 200 * MIB
# Send at most this much of the one big PATCH, so the server is always mid-body when killed.
SEND_CAP = 160 * MIB
KILL_AFTER = 100 * MIB
# Paced so the kill lands while bytes are flowing (~50 MiB/s), not after the body is done.
SEND_PAUSE = 0.02
SMALL = 2 * MIB
STALL_PART = 256 * 1024
FAST = 1.0  # seconds: HEAD and /healthz must answer within this while a PATCH stalls
TAKEOVER_LIMIT = 10.0  # seconds; the server's read timeout (60 s) is what takeover avoids
LOCK_WAIT = 2.0
BIG_TEXT_PROFILE = {"extensions": ["txt"], "types": ["text/plain"], "max_size": 256 * MIB}


@pytest.fixture
def big_live(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A server whose ``bigtext`` profile takes text files of up to 256 MiB."""
    env = profiles_env(bigtext=BIG_TEXT_PROFILE)
    with LiveServer(tmp_path, database_url, env) as server:
        yield server


def timed(call: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def upload_object(server: LiveServer, upload_id: str) -> Path:
    """Where an unfinished upload's bytes grow: ``<storage>/uploads/<shard>/<id>``."""
    return server.storage_dir / "uploads" / upload_id[-2:] / upload_id


def patch_rest(
    client: httpx.Client, url: str, payload: TextPayload, deadline: float
) -> tuple[httpx.Response, list[str]]:
    """What a tus client does: HEAD, PATCH from there; on 409 or 423 HEAD again and retry."""
    answers = []
    while True:
        offset = tus_offset(client, url)
        headers = tus_headers(
            extra={"Upload-Offset": str(offset), "Content-Type": OFFSET_OCTET_STREAM}
        )
        response = client.patch(
            urlsplit(url).path, content=payload.slice(offset, payload.size), headers=headers
        )
        answers.append(f"{response.status_code} at {offset}")
        if response.status_code not in (409, 423) or time.monotonic() > deadline:
            return response, answers
        time.sleep(0.1)


@pytest.fixture
def two_servers(tmp_path: Path, database_url: str) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one database and one storage dir; the second waits 2 s for locks."""
    if database_url.startswith("sqlite"):
        pytest.skip("advisory locks are PostgreSQL's")
    first = LiveServer(tmp_path, database_url, name="first")
    second = first.sibling("second", {"FILEGATE_TUS_LOCK_WAIT_SECONDS": str(LOCK_WAIT)})
    with first, second:
        yield first, second


@contextmanager
def stalled_patch(
    server: LiveServer, url: str, key: str, payload: TextPayload
) -> Iterator[socket.socket]:
    """A PATCH that sends its first part, then nothing; the socket stays open until exit."""
    with open_patch(server, url, key, 0, payload.size) as sock:
        sock.sendall(payload.slice(0, STALL_PART))
        written = upload_object(server, upload_id_of(url))
        wait_for(written.exists, 10.0, "the stalled PATCH to start writing")
        yield sock


def patch_once(client: httpx.Client, url: str, payload: TextPayload) -> httpx.Response:
    """One PATCH of the rest from the offset HEAD reports, whatever the answer."""
    response, _ = patch_rest(client, url, payload, deadline=0.0)
    return response


class PacedSender(threading.Thread):
    """Sends one PATCH body block by block, pausing between, until the cap or an error.

    ``sent`` bounds from above what the server can have received.
    """

    def __init__(self, sock: socket.socket, payload: TextPayload) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.payload = payload
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        for block in self.payload.chunks():
            if self.sent >= SEND_CAP or self.stop.is_set():
                return
            # Counted first: the server may read part of a block before sendall returns.
            self.sent += len(block)
            try:
                self.sock.sendall(block)
            except OSError:  # the server is gone
                return
            time.sleep(SEND_PAUSE)


@pytest.mark.slow
def test_kill_9_mid_patch_keeps_the_durable_offset_and_tuspy_resumes(
    big_live: LiveServer,
) -> None:
    payload = TextPayload(BIG)
    key = big_live.create_key("tenant-a")
    with big_live.client(key) as client:
        url = tus_create(client, BIG, filename="big.txt", profile="bigtext")
        upload_id = upload_id_of(url)
        with open_patch(big_live, url, key, 0, BIG) as sock:
            sender = PacedSender(sock, payload)
            sender.start()
            try:
                # Kill once a checkpoint is reported, so there is a durable offset to keep.
                wait_for(
                    lambda: sender.sent > KILL_AFTER and tus_offset(client, url) >= CHECKPOINT,
                    60.0,
                    "100 MiB sent and an in-PATCH checkpoint",
                )
                reported = tus_offset(client, url)
                big_live.kill()
            finally:
                sender.stop.set()
                sender.join(10.0)
        assert not sender.is_alive()
    print(f"killed with {sender.sent / MIB:g} MiB sent; HEAD said {reported / MIB:g} MiB")
    big_live.restart()
    with big_live.client(key, timeout=120.0) as client:
        offset = tus_offset(client, url)
        on_disk = upload_object(big_live, upload_id).stat().st_size
        print(f"after restart: offset {offset / MIB:g} MiB, object {on_disk / MIB:g} MiB")
        assert 0 < reported <= offset <= sender.sent
        assert on_disk >= offset  # the offset never runs ahead of the bytes on disk
        resumed = tus.TusClient(big_live.base_url + TUS_BASE, {"Authorization": f"Bearer {key}"})
        uploader = resumed.uploader(file_stream=payload, url=url, chunk_size=32 * MIB)
        assert uploader.offset == offset
        uploader.upload()
        assert tus_offset(client, url) == BIG
        assert clean_sha256(client, upload_id, timeout=120.0) == payload.sha256()


def test_stalled_patch_blocks_nothing_and_a_reconnected_client_takes_over(
    live: LiveServer,
) -> None:
    payload = TextPayload(SMALL)
    key = live.create_key("tenant-a")
    with live.client(key) as client:
        url = tus_create(client, SMALL, filename="notes.txt")
        with stalled_patch(live, url, key, payload) as stale:
            offset, head_seconds = timed(lambda: tus_offset(client, url))
            health, health_seconds = timed(lambda: client.get("/healthz"))
            print(f"while stalled: HEAD {head_seconds:.3f}s, /healthz {health_seconds:.3f}s")
            assert offset == 0  # below a checkpoint, nothing of a running PATCH counts yet
            assert head_seconds < FAST
            assert health.status_code == 200
            assert health_seconds < FAST
            deadline = time.monotonic() + TAKEOVER_LIMIT
            (done, answers), seconds = timed(lambda: patch_rest(client, url, payload, deadline))
            print(f"reconnected client: {', '.join(answers)} in {seconds:.3f}s")
            assert done.status_code == 204, done.text
            assert seconds < TAKEOVER_LIMIT
            stopped = read_response(stale, timeout=5.0)
        print(f"the stale request was answered {stopped.status} {stopped.json()['code']}")
        assert stopped.json()["code"] == "tus_upload_stopped"
        assert int(done.headers["upload-offset"]) == SMALL
        assert clean_sha256(client, upload_id_of(url)) == payload.sha256()


def test_across_processes_a_stalled_patch_locks_out_the_other_server(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_servers
    payload = TextPayload(SMALL)
    key = first.create_key("tenant-a")
    with second.client(key) as client, ThreadPoolExecutor(1) as pool:
        url = tus_create(client, SMALL, filename="notes.txt")
        with stalled_patch(first, url, key, payload):
            locked = pool.submit(timed, lambda: patch_once(client, url, payload))
            time.sleep(0.3)  # the PATCH via server 2 is now waiting for the lock
            offset, head_seconds = timed(lambda: tus_offset(client, url))
            refused, refused_seconds = locked.result(timeout=30.0)
            print(
                f"server 2: HEAD {head_seconds:.3f}s while its PATCH waited; "
                f"PATCH {refused.status_code} after {refused_seconds:.3f}s"
            )
            assert head_seconds < FAST
            assert offset == 0
            assert refused.status_code == 423, refused.text
            assert refused.json()["code"] == "tus_upload_locked"
            assert refused.headers["tus-resumable"] == "1.0.0"
            assert LOCK_WAIT - 0.5 < refused_seconds < LOCK_WAIT + 3.0
        # The stalled client is gone: server 1 keeps what arrived and lets go of the lock.
        deadline = time.monotonic() + TAKEOVER_LIMIT
        done, answers = patch_rest(client, url, payload, deadline)
        print(f"server 2 after the stalled client left: {', '.join(answers)}")
        assert done.status_code == 204, done.text
        assert clean_sha256(client, upload_id_of(url)) == payload.sha256()


def test_a_patch_taken_over_while_waiting_for_the_lock_gets_a_tus_answer(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_servers
    payload = TextPayload(SMALL)
    key = first.create_key("tenant-a")
    with second.client(key) as client, ThreadPoolExecutor(2) as pool:
        url = tus_create(client, SMALL, filename="notes.txt")
        with stalled_patch(first, url, key, payload):
            waiting = pool.submit(patch_once, client, url, payload)
            time.sleep(0.5)  # it waits for server 1's advisory lock...
            newer = pool.submit(patch_once, client, url, payload)  # ...and is taken over
            superseded = waiting.result(timeout=30.0)
            assert newer.result(timeout=30.0).status_code == 423
    print(f"superseded waiter: {superseded.status_code} {superseded.text[:80]!r}")
    assert superseded.headers.get("tus-resumable") == "1.0.0"
    assert superseded.headers["content-type"] == "application/problem+json"
    assert superseded.json()["code"] in {"tus_upload_stopped", "tus_upload_locked"}
