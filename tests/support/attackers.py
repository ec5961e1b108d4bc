"""Hostile clients, run in a process of their own so their CPU does not slow the measuring
test's own requests (the GIL): idle connections, trickled bodies, header floods, huge bodies."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

MIB = 1024 * 1024


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def idle_connections(port: int, count: int, seconds: float) -> None:
    """Open ``count`` connections and send nothing (the head timeout must close them)."""
    opened = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            opened.append(_connect(port))
    time.sleep(seconds)
    for sock in opened:
        sock.close()


def trickle_upload(port: int, key: str, seconds: float) -> None:
    """A raw upload that sends 50 bytes every 0.2 s (the minimum body rate must cut it)."""
    with contextlib.suppress(OSError), _connect(port) as sock:
        sock.sendall(
            b"POST /v1/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b'Content-Disposition: attachment; filename="slow.txt"\r\n'
            b"Content-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n" % key.encode()
        )
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            sock.sendall(b"a" * 50)
            time.sleep(0.2)


def header_flood(port: int, megabytes: int) -> None:
    """Send a header block of ``megabytes`` MiB (the server must cut it at 64 KiB)."""
    line = b"X-Filler: " + b"a" * (MIB - 12) + b"\r\n"
    with contextlib.suppress(OSError), _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for _ in range(megabytes):
            sock.sendall(line)


def huge_json(port: int, megabytes: int) -> None:
    """An unauthenticated chunked JSON body of ``megabytes`` MiB to a JSON route."""
    chunk = b"[" + b"1," * (MIB // 2 - 1) + b"1]"
    with contextlib.suppress(OSError), _connect(port) as sock:
        sock.sendall(
            b"POST /v1/webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(megabytes):
            sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))


def all_at_once(port: int, key: str, seconds: float) -> None:
    """Every attack above, concurrently, for about ``seconds``."""
    attacks = [threading.Thread(target=idle_connections, args=(port, 200, seconds))]
    attacks += [
        threading.Thread(target=trickle_upload, args=(port, key, seconds)) for _ in range(20)
    ]
    attacks += [threading.Thread(target=header_flood, args=(port, 20)) for _ in range(3)]
    attacks += [threading.Thread(target=huge_json, args=(port, 100)) for _ in range(2)]
    for attack in attacks:
        attack.start()
    for attack in attacks:
        attack.join()
