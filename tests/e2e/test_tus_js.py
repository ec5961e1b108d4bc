"""tus-js-client, the tus reference client for JavaScript, against a running server.

Each mode of ``js/client.mjs`` uploads generated text through ``/v1/tus/``; the file must then
be inspected clean and download with the source's sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.live import MIB, TUS_BASE, LiveServer, inspected, tus_headers, upload_id_of
from tests.support.node import node_with_packages

JS_DIR = Path(__file__).parent / "js"
CLIENT = JS_DIR / "client.mjs"
NODE_TIMEOUT = 120.0
# Inspection is quick, but a loaded 2-core runner can be slow to schedule the worker.
INSPECTION_TIMEOUT = 30.0
CHUNK = 64 * 1024
# Not a multiple of CHUNK: the last PATCH is short, and tus-js-client 4.3.1 stalls on a
# deferred-length stream whose length is one (tus/tus-js-client#779).
SIZE = 3 * MIB + 12_345
PARALLEL_SIZE = 5 * MIB + 777
WORDS = ("upload", "gateway", "quarantine", "inspect", "resumable", "offset", "chunk", "tenant")


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with ``js/node_modules`` installed from ``package-lock.json``."""
    return node_with_packages(JS_DIR, "run tus-js-client")


def text_file(directory: Path, size: int, seed: str) -> Path:
    """Exactly ``size`` bytes of lines of random words, named so the default profile takes it.

    Unlike a repeating payload, no stretch of it recurs at another offset, so a chunk stored in
    the wrong place always changes the sha256.
    """
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        lines.append(" ".join(rng.choices(WORDS, k=rng.randint(4, 16))) + "\n")
        total += len(lines[-1])
    path = directory / f"{seed}.txt"
    path.write_bytes("".join(lines).encode("ascii")[:size])
    return path


def run_client(
    node: str,
    live: LiveServer,
    key: str,
    source: Path,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Upload ``source`` with ``client.mjs`` (``options`` name the mode); its JSON report."""
    args = {
        "endpoint": live.base_url + TUS_BASE,
        "key": key,
        "file": str(source),
        "metadata": {"filename": source.name, "filetype": "text/plain"},
        **options,
    }
    result = subprocess.run(
        [node, str(CLIENT), json.dumps(args)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    lines = result.stdout.splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {"ok": False}
    assert result.returncode == 0, (
        f"client.mjs {args['mode']} exited {result.returncode}: {report.get('error')}\n"
        f"stderr:\n{result.stderr}\nserver log:\n{live.log_tail()}"
    )
    assert report["ok"] is True
    return report


def requests_of(report: dict[str, Any], method: str) -> list[dict[str, Any]]:
    return [r for r in report["requests"] if r["method"] == method]


def assert_stored_clean(client: httpx.Client, file_id: str, source: Path) -> None:
    """The upload became file ``file_id``: inspected clean, and downloads byte for byte."""
    data = source.read_bytes()
    record = inspected(client, file_id, INSPECTION_TIMEOUT)
    assert record["state"] == "clean", record["findings"]
    assert record["detected_type"] == "text/plain"
    assert record["size"] == len(data)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    content = client.get(f"/v1/files/{file_id}/content")
    assert content.status_code == 200, content.text
    assert hashlib.sha256(content.content).hexdigest() == hashlib.sha256(data).hexdigest()


def test_chunked_upload(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, SIZE, "chunked")
    report = run_client(node, live, key, source, {"mode": "chunked", "chunkSize": CHUNK})
    patches = requests_of(report, "PATCH")
    expected = [min(CHUNK * n, SIZE) for n in range(1, math.ceil(SIZE / CHUNK) + 1)]
    assert [p["offset"] for p in patches] == expected
    assert {p["status"] for p in patches} == {204}
    with live.client(key) as client:
        assert_stored_clean(client, upload_id_of(report["url"]), source)


def test_creation_with_upload(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, SIZE, "with-creation")
    report = run_client(node, live, key, source, {"mode": "with-creation", "chunkSize": MIB})
    [create] = requests_of(report, "POST")
    assert create["status"] == 201
    assert create["offset"] == MIB  # the POST carried the first chunk
    assert [p["offset"] for p in requests_of(report, "PATCH")] == [2 * MIB, 3 * MIB, SIZE]
    with live.client(key) as client:
        assert_stored_clean(client, upload_id_of(report["url"]), source)


def test_deferred_length_stream(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, SIZE, "deferred-stream")
    report = run_client(node, live, key, source, {"mode": "deferred-stream", "chunkSize": CHUNK})
    # The length is only known, and sent, once the stream has ended.
    *before, last = report["requests"]
    assert [r["length"] for r in before] == [None] * len(before)
    assert (last["method"], last["length"], last["offset"]) == ("PATCH", SIZE, SIZE)
    with live.client(key) as client:
        assert_stored_clean(client, upload_id_of(report["url"]), source)


def test_abort_then_resume(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, SIZE, "abort-then-resume")
    options = {"mode": "abort-then-resume", "chunkSize": CHUNK, "abortAt": 0.3}
    report = run_client(node, live, key, source, options)
    assert 0 < report["resumedFrom"] < SIZE
    # Aborted between requests, so the server holds exactly what it last acknowledged.
    assert report["resumedFrom"] == report["acknowledged"]
    assert report["url"] == report["abortedUrl"]
    assert len(requests_of(report, "POST")) == 1, "the resume created a new upload"
    [head] = requests_of(report, "HEAD")
    assert head["offset"] == report["resumedFrom"]
    with live.client(key) as client:
        assert_stored_clean(client, upload_id_of(report["url"]), source)


def test_parallel_upload_is_concatenated(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, PARALLEL_SIZE, "parallel")
    options = {"mode": "parallel", "chunkSize": 256 * 1024, "parallelUploads": 3}
    report = run_client(node, live, key, source, options)
    *partials, final_post = requests_of(report, "POST")
    assert [p["concat"] for p in partials] == ["partial"] * 3
    final = final_post["concat"]
    assert final.startswith("final;")
    partial_urls = {r["url"] for r in requests_of(report, "PATCH")}
    assert set(final.removeprefix("final;").split(" ")) == partial_urls
    assert len(partial_urls) == 3
    file_id = upload_id_of(report["url"])
    with live.client(key) as client:
        assert_stored_clean(client, file_id, source)
        # The partial uploads are parts, never files of their own.
        assert [item["id"] for item in client.get("/v1/files").json()["items"]] == [file_id]


def test_terminate(node: str, live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    source = text_file(tmp_path, SIZE, "terminate")
    report = run_client(node, live, key, source, {"mode": "terminate", "chunkSize": CHUNK})
    assert report["offsetBeforeTerminate"] == CHUNK
    [delete] = requests_of(report, "DELETE")
    assert delete["status"] == 204
    with live.client(key) as client:
        assert client.head(report["url"], headers=tus_headers()).status_code == 410
        assert client.get(f"/v1/files/{upload_id_of(report['url'])}").status_code == 404
    uploads = live.storage_dir / "uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []
    assert live.leftovers() == []
