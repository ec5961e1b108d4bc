"""Slow and greedy clients against a live server: head deadline, minimum body rate, a cap on
concurrent uploads, and a shutdown that ends a running upload at once and keeps its bytes."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import (
    HOST,
    MIB,
    LiveServer,
    TextPayload,
    open_patch,
    open_request,
    read_response,
    tus_create,
    tus_offset,
    wait_for,
)

HEAD_TIMEOUT = 1.0
READ_WINDOW = 1.0
MIN_RATE = 2000
SLOW_ENV = {
    "FILEGATE_REQUEST_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
    "FILEGATE_UPLOAD_READ_TIMEOUT": str(READ_WINDOW),
    "FILEGATE_UPLOAD_MIN_BYTES_PER_SECOND": str(MIN_RATE),
    "FILEGATE_MAX_CONCURRENT_UPLOADS": "2",
}


@pytest.fixture
def slow_live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", SLOW_ENV) as server:
        yield server


def _answer_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b""


def test_a_silent_connection_is_closed_after_the_head_timeout(slow_live: LiveServer) -> None:
    started = time.monotonic()
    with socket.create_connection((HOST, slow_live.port), timeout=10) as silent:
        answer = _answer_within(silent, HEAD_TIMEOUT + 5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_head_sent_a_header_at_a_time_is_cut_off(slow_live: LiveServer) -> None:
    started = time.monotonic()
    with socket.create_connection((HOST, slow_live.port), timeout=10) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for index in range(20):  # a header every 0.3 s would take 6 s in all
            try:
                slow.sendall(f"X-Slow-{index}: a\r\n".encode())
            except OSError:
                break
            answer = _answer_within(slow, 0.3)
            if answer:
                break
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert time.monotonic() - started < HEAD_TIMEOUT + 3


def test_a_trickled_body_is_cut_off_below_the_minimum_rate(slow_live: LiveServer) -> None:
    key = slow_live.create_key("slow")
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Disposition": 'attachment; filename="slow.txt"',
        "Content-Type": "text/plain",
        "Content-Length": "100000",
    }
    started = time.monotonic()
    with open_request(slow_live, "/v1/files", headers) as sock:
        # 100 bytes every 0.2 s: 500 bytes/s, never silent long enough for the idle timeout.
        for _ in range(50):
            try:
                sock.sendall(b"a" * 100)
            except OSError:
                break
            if _answer_ready(sock, 0.2):
                break
        response = read_response(sock)
    assert response.status == 408, response.body
    assert json.loads(response.body)["code"] == "upload_timeout"
    assert b"bytes/s" in response.body
    assert time.monotonic() - started < READ_WINDOW * 2 + 3
    assert not slow_live.temp_files()  # nothing half-written is left behind


def _answer_ready(sock: socket.socket, seconds: float) -> bool:
    import select

    ready, _, _ = select.select([sock], [], [], seconds)
    return bool(ready)


def test_uploads_past_the_process_cap_get_503_and_retry_after(slow_live: LiveServer) -> None:
    key = slow_live.create_key("busy")
    payload = TextPayload(4 * MIB)
    with slow_live.client(key) as client:
        urls = [tus_create(client, payload.size, filename=f"{n}.txt") for n in range(3)]
        stop = threading.Event()
        busy = [open_patch(slow_live, url, key, 0, payload.size) for url in urls[:2]]
        feeders = [threading.Thread(target=_feed, args=(s, payload, stop)) for s in busy]
        for feeder in feeders:
            feeder.start()
        try:
            time.sleep(0.5)  # both PATCHes hold their slots
            third = client.patch(
                urls[2],
                headers=_patch_headers(0),
                content=payload.slice(0, 1000),
            )
            assert third.status_code == 503, third.text
            assert third.json()["code"] == "server_busy"
            assert third.headers["retry-after"] == "1"
            assert client.get("/healthz").status_code == 200  # the connection stays usable
        finally:
            stop.set()
            for feeder in feeders:
                feeder.join()
            for sock in busy:
                sock.close()
        wait_for(lambda: _patch_ok(client, urls[2], payload), 10.0, "a free upload slot")


def _logged(server: LiveServer, event: str) -> bool:
    return any(line.get("event") == event for line in server.log_events())


def _feed(sock: socket.socket, payload: TextPayload, stop: threading.Event) -> None:
    """Send the body at ~200 KiB/s (well above the minimum rate) until told to stop."""
    for offset in range(0, payload.size, 20_000):
        if stop.is_set():
            return
        try:
            sock.sendall(payload.slice(offset, offset + 20_000))
        except OSError:
            return
        time.sleep(0.1)


def _patch_headers(offset: int) -> dict[str, str]:
    return {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }


def _patch_ok(client: object, url: str, payload: TextPayload) -> bool:
    response = client.patch(  # type: ignore[attr-defined]
        url, headers=_patch_headers(0), content=payload.slice(0, 1000)
    )
    return bool(response.status_code == 204)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_shutdown_mid_patch_answers_503_keeps_the_bytes_and_exits_quickly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    payload = TextPayload(64 * MIB)
    env = {"FILEGATE_LOG_LEVEL": "debug"}  # worker.inspector_ready is a debug line
    server = LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env)
    with server:
        # The inspector child ignores SIGINT from its first line; wait until it runs that.
        wait_for(lambda: _logged(server, "worker.inspector_ready"), 30.0, "the inspector")
        key = server.create_key("stop")
        with server.client(key) as client:
            url = tus_create(client, payload.size, filename="big.txt")
        sock = open_patch(server, url, key, 0, payload.size)
        sent = 0
        for offset in range(0, 3 * MIB, 256 * 1024):
            sock.sendall(payload.slice(offset, offset + 256 * 1024))
            sent += 256 * 1024
        time.sleep(0.3)  # the server has read some of it
        # Ctrl-C in a terminal signals the whole process group: server and sandbox child.
        server.signal_group(stop_signal)
        started = time.monotonic()
        response = read_response(sock, timeout=10)
        answered = time.monotonic() - started
        exit_code = server.wait_exit(10)
        exited = time.monotonic() - started
        sock.close()
        server.stop()  # already exited: this closes its log
        assert response.status == 503, response.body
        assert json.loads(response.body)["code"] == "server_stopping"
        assert response.headers["connection"] == "close"
        assert "retry-after" in response.headers
        assert answered < 2.0
        # uvicorn ends by re-raising SIGTERM once it has shut down cleanly.
        assert exit_code in (0, -stop_signal), server.log_tail()
        assert exited < 5.0
        log = server.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]
        assert "KeyboardInterrupt" not in log
        server.start()
        with server.client(key) as client:
            kept = tus_offset(client, url)
        assert 0 < kept <= sent
    print(f"answered 503 after {answered:.2f} s, exited after {exited:.2f} s, kept {kept} bytes")
