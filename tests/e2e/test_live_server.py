"""The HTTP API of a running server, driven over TCP by real clients that also misbehave."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx

from tests.e2e.live import (
    MIB,
    LiveServer,
    inspected,
    open_request,
    read_response,
    send_chunks,
    wait_for,
)
from tests.support.samples import HTML, png

# Inspection is quick, but a loaded 2-core runner can be slow to schedule the worker.
MISSING_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
KEY_RE = re.compile(r"fgk_[A-Za-z0-9_-]+")


def upload(client: httpx.Client, data: bytes, name: str) -> dict[str, Any]:
    response = client.post("/v1/files", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def raw_headers(key: str, name: str = "blob.bin") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/octet-stream",
        "Content-Disposition": f'attachment; filename="{name}"',
    }


def zero_chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    chunk = b"\0" * size
    for _ in range(total // size):
        yield chunk


def refusals(live: LiveServer) -> list[dict[str, Any]]:
    return [event for event in live.log_events() if event.get("event") == "upload.refused"]


def assert_nothing_left(live: LiveServer, client: httpx.Client) -> None:
    assert live.leftovers() == []
    assert live.temp_files("quarantine") == live.temp_files("clean") == []
    assert client.get("/v1/files").json()["items"] == []


def test_upload_is_inspected_clean_and_downloads_identically(live: LiveServer) -> None:
    # Text is promoted as uploaded (images are re-encoded, so they would not be identical).
    data = b"".join(b"line %d of a plain text report\n" % i for i in range(2000))
    with live.client(live.create_key("tenant-a")) as client:
        created = upload(client, data, "report.txt")
        assert created["state"] == "quarantined"
        assert created["sha256"] == hashlib.sha256(data).hexdigest()
        record = inspected(client, created["id"])
        assert record["state"] == "clean", record["findings"]
        assert record["detected_type"] == "text/plain"
        response = client.get(f"/v1/files/{created['id']}/content")
    assert response.status_code == 200
    assert response.content == data
    assert hashlib.sha256(response.content).hexdigest() == record["sha256"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["content-disposition"].startswith('attachment; filename="report.txt"')
    assert response.headers["content-type"].startswith("text/plain")


def test_image_is_promoted_as_a_sanitised_copy(live: LiveServer) -> None:
    with live.client(live.create_key("tenant-a")) as client:
        created = upload(client, png(64, 64), "photo.png")
        record = inspected(client, created["id"])
        response = client.get(f"/v1/files/{created['id']}/content")
    assert record["state"] == "clean", record["findings"]
    assert response.headers["content-type"] == "image/png"
    assert hashlib.sha256(response.content).hexdigest() == record["sha256"]
    assert len(response.content) == record["size"]


def test_html_disguised_as_png_is_rejected_and_never_served(live: LiveServer) -> None:
    with live.client(live.create_key("tenant-a")) as client:
        created = upload(client, HTML, "photo.png")
        record = inspected(client, created["id"])
        content = client.get(f"/v1/files/{created['id']}/content")
    assert record["state"] == "rejected"
    assert "type_mismatch" in {finding["code"] for finding in record["findings"]}
    assert content.status_code == 403
    assert content.headers["content-type"] == "application/problem+json"
    assert content.json()["code"] == "file_rejected"
    assert HTML not in content.content


def test_oversize_stream_is_refused_before_its_end(live: LiveServer) -> None:
    key = live.create_key("tenant-a")
    headers = {**raw_headers(key), "Transfer-Encoding": "chunked"}
    with open_request(live, "/v1/files?profile=small", headers) as sock:
        # The body is never terminated: only a server that counts while streaming can answer.
        sent = send_chunks(sock, zero_chunks(8 * MIB), finish=False)
        response = read_response(sock)
    print(f"413 after the client sent {sent} of {8 * MIB} body bytes")
    assert response.status == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "file_too_large"
    assert response.json()["max_size"] == MIB
    with live.client(key) as client:
        wait_for(lambda: live.temp_files() == [], 10.0, "the aborted temp file to go")
        assert_nothing_left(live, client)


def test_declared_oversize_is_refused_before_the_body(live: LiveServer) -> None:
    key = live.create_key("tenant-a")
    headers = {**raw_headers(key), "Content-Length": str(MIB + 1)}
    with open_request(live, "/v1/files?profile=small", headers) as sock:
        response = read_response(sock, timeout=5.0)
    assert response.status == 413
    assert response.json()["code"] == "file_too_large"
    with live.client(key) as client:
        assert_nothing_left(live, client)


def test_tenants_cannot_see_each_others_files(live: LiveServer) -> None:
    with (
        live.client(live.create_key("tenant-a")) as a,
        live.client(live.create_key("tenant-b")) as b,
    ):
        file_id = upload(a, png(8, 8), "photo.png")["id"]
        inspected(a, file_id)
        for method, path in [
            ("GET", "/v1/files/{}"),
            ("GET", "/v1/files/{}/content"),
            ("DELETE", "/v1/files/{}"),
        ]:
            theirs = b.request(method, path.format(file_id))
            absent = b.request(method, path.format(MISSING_ID))
            assert theirs.status_code == absent.status_code == 404
            assert theirs.json()["code"] == absent.json()["code"] == "file_not_found"
            assert theirs.json()["detail"] == absent.json()["detail"]
        assert b.get("/v1/files").json()["items"] == []
        assert a.get(f"/v1/files/{file_id}").json()["state"] == "clean"


def test_interrupted_upload_leaves_nothing(live: LiveServer) -> None:
    key = live.create_key("tenant-a")
    headers = {**raw_headers(key, "photo.png"), "Transfer-Encoding": "chunked"}
    with open_request(live, "/v1/files", headers) as sock:
        send_chunks(sock, zero_chunks(256 * 1024), finish=False)
        # The temp file proves the server is mid-upload when the client vanishes.
        wait_for(lambda: live.temp_files() != [], 10.0, "the upload's temp file")
    wait_for(lambda: refusals(live) != [], 10.0, "the server to notice the disconnect")
    assert [event["code"] for event in refusals(live)] == ["upload_incomplete"]
    with live.client(key) as client:
        assert_nothing_left(live, client)


def test_keys_create_prints_the_key_alone_on_the_last_line(live: LiveServer) -> None:
    result = live.run_cli("keys", "create", "--tenant", "tenant-k", "--scopes", "read")
    *before, key = result.stdout.splitlines()
    assert KEY_RE.fullmatch(key)
    # Printed once: nowhere else on stdout, and never in the log stream.
    assert not any(key in line for line in before)
    assert key not in result.stderr
    with live.client(key) as client:
        assert client.get("/v1/files").status_code == 200
        refused = client.post("/v1/files", files={"file": ("a.png", png())})
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    with live.client(key + "x") as wrong:
        assert wrong.get("/v1/files").status_code == 401
