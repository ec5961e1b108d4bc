"""Hostile HTTP against a live server: what arrives before any application code runs."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx2 as httpx

from filegate.web.protocol import MAX_HEAD_BYTES
from tests.e2e.live import MIB, LiveServer

# A header block as large as the one that stalled the event loop for 6-8 s.
HUGE_HEAD = 100 * MIB
# /healthz answers in milliseconds; a stalled loop shows as seconds.
STALL_SECONDS = 1.0


def test_a_huge_header_block_is_cut_off_without_stalling_the_server(tmp_path: Path) -> None:
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", {}) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        sent = 0
        answer = b""

        def flood() -> None:
            nonlocal sent, answer
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                line = b"X-Filler: " + b"a" * (MIB - 12) + b"\r\n"
                try:
                    while sent < HUGE_HEAD:
                        raw.sendall(line)
                        sent += len(line)
                except OSError:
                    pass  # the server closed the connection: what this test wants
                answer = raw.recv(4096)

        timings: list[float] = []
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            client.get("/healthz")  # a warm connection, as a load balancer keeps
            flooder = threading.Thread(target=flood)
            flooder.start()
            until = time.monotonic() + 1.0  # and a second more once the flood is over
            while flooder.is_alive() or time.monotonic() < until:
                started = time.monotonic()
                assert client.get("/healthz").status_code == 200
                timings.append(time.monotonic() - started)
            flooder.join()
        slowest = max(timings)
    print(
        f"sent {sent} bytes of headers before the cut; {len(timings)} /healthz, "
        f"slowest {slowest * 1000:.1f} ms"
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert sent < HUGE_HEAD  # cut off, not read to the end
    assert sent <= MAX_HEAD_BYTES + 64 * MIB  # what the kernel's buffers still took
    assert slowest < STALL_SECONDS
