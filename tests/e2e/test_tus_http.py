"""tus over the wire: Expect: 100-continue, chunked PATCH bodies, X-HTTP-Method-Override."""

from __future__ import annotations

import socket

from tests.e2e.live import (
    OFFSET_OCTET_STREAM,
    LiveServer,
    open_request,
    read_response,
    send_chunks,
    tus_create,
    tus_headers,
    tus_offset,
)

BODY = b"".join(b"line %04d of a resumable text upload\n" % i for i in range(200))


def _patch_headers(key: str, offset: int, **extra: str) -> dict[str, str]:
    return tus_headers(
        key, {"Upload-Offset": str(offset), "Content-Type": OFFSET_OCTET_STREAM, **extra}
    )


def _interim(sock: socket.socket) -> bytes:
    """What the server sends before we send any body: a 100 Continue, or a final answer."""
    sock.settimeout(10)
    return sock.recv(4096)


def test_tus_over_the_wire(live: LiveServer) -> None:
    key = live.create_key("tenant-a")
    with live.client(key) as client:
        url = tus_create(client, len(BODY), filename="notes.txt")
    path = url.split("://", 1)[-1].split("/", 1)[1]
    target = "/" + path

    # A PATCH at the wrong offset is refused before the body: no 100 Continue, a final 409.
    sock = open_request(
        live,
        target,
        _patch_headers(key, 7, **{"Content-Length": "10", "Expect": "100-continue"}),
        method="PATCH",
    )
    with sock:
        first = _interim(sock)
    assert first.startswith(b"HTTP/1.1 409"), first[:80]
    assert b"100 Continue" not in first

    # A good PATCH gets 100 Continue first, then takes a chunked body.
    half = len(BODY) // 2
    sock = open_request(
        live,
        target,
        _patch_headers(key, 0, **{"Transfer-Encoding": "chunked", "Expect": "100-continue"}),
        method="PATCH",
    )
    with sock:
        assert _interim(sock).startswith(b"HTTP/1.1 100")
        send_chunks(sock, [BODY[:half][i : i + 1000] for i in range(0, half, 1000)])
        response = read_response(sock)
    assert response.status == 204, response.body
    assert response.headers["upload-offset"] == str(half)

    # The rest through POST + X-HTTP-Method-Override: PATCH, as proxies that drop PATCH need.
    sock = open_request(
        live,
        target,
        _patch_headers(
            key,
            half,
            **{"Content-Length": str(len(BODY) - half), "X-HTTP-Method-Override": "PATCH"},
        ),
        method="POST",
    )
    with sock:
        sock.sendall(BODY[half:])
        response = read_response(sock)
    assert response.status == 204, response.body
    with live.client(key) as client:
        assert tus_offset(client, url) == len(BODY)
