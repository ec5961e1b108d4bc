"""The upload page in a real browser: issue #19's "done when" for ``/upload``.

A server as ``make run`` starts it (embedded worker, so verdicts arrive) serves the page from
the assets built into the package; headless Chromium (``browser/upload_page.mjs``,
playwright-core on the system's Chromium) opens it with an upload token in the fragment, drops
three files (50 MiB of text, a clean note, HTML dressed as a PNG), loses the network under the
big one, reloads the page mid-upload and drops it again, pauses and resumes it, and downloads
the clean file. The server is then asked what it holds: one upload per file, every byte in
place, both verdicts as the page showed them.

``FILEGATE_UPLOAD_SCREENSHOT=docs/images/upload-page.png`` also writes the README's
screenshot (docs/upload-page.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.live import MIB, LiveServer, TextPayload, free_port, inspected
from tests.e2e.test_status_browser import CHROMIUM, make_run_server
from tests.support.node import node_with_packages, run_script, unavailable
from tests.support.samples import HTML

BROWSER_DIR = Path(__file__).parent / "browser"
SCRIPT = BROWSER_DIR / "upload_page.mjs"
EMBED_SCRIPT = BROWSER_DIR / "upload_embed.mjs"
# upload_page.mjs gives up by itself after 140 s; this only catches a node that hangs anyway.
NODE_TIMEOUT = 160.0
BIG = 50 * MIB
# Where upload_page.mjs holds the big upload (8 MiB tus chunks): network cut, reload.
CUT_AT = 16 * MIB
RELOAD_AT = 32 * MIB
SCREENSHOT_ENV = "FILEGATE_UPLOAD_SCREENSHOT"


@pytest.fixture(scope="session")
def node() -> str:
    if not CHROMIUM.exists():
        unavailable(f"the upload page test drives the system Chromium, and {CHROMIUM} is missing")
    return node_with_packages(BROWSER_DIR, "drive Chromium")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[LiveServer]:
    with make_run_server(tmp_path) as server:
        yield server


def upload_token(live: LiveServer) -> str:
    """A token as an application's backend mints one for a browser: three files at most."""
    with live.client(live.create_key("tenant-a", scopes="upload")) as backend:
        response = backend.post("/v1/upload-tokens", json={"max_files": 3, "expires_in": 600})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def drive(node: str, live: LiveServer, token: str, files: dict[str, Path], out: Path) -> Any:
    args = {
        "page": f"{live.base_url}/upload",
        "token": token,
        **{role: str(path) for role, path in files.items()},
        "out": str(out),
        "docsScreenshot": docs_screenshot(),
    }
    report = run_script(
        node, SCRIPT, [json.dumps(args)], timeout=NODE_TIMEOUT, server_log=live.log_tail
    )
    (out / "report.json").write_text(json.dumps(report))  # beside the screenshots, to read later
    return report


def docs_screenshot() -> str | None:
    """Where the README's screenshot goes, if asked for (relative to the current directory)."""
    path = os.environ.get(SCREENSHOT_ENV)
    return str(Path(path).resolve()) if path else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_page_survives_network_loss_reload_and_pause(
    node: str, running: LiveServer, tmp_path: Path
) -> None:
    files = {
        "big": TextPayload(BIG).write_to(tmp_path / "survey-2026.txt"),
        "clean": tmp_path / "notes.txt",
        "rejected": tmp_path / "holiday.png",
    }
    files["clean"].write_text("Minutes of the meeting, plain text.\n" * 40)
    files["rejected"].write_bytes(HTML)
    out = tmp_path / "browser"
    out.mkdir()

    report = drive(node, running, upload_token(running), files, out)

    # Nothing left the machine, and the token never stayed in the address bar.
    foreign = [r["url"] for r in report["requests"] if urlsplit(r["url"]).hostname != "127.0.0.1"]
    assert foreign == []
    assert "token" not in report["addressAfterLoad"]
    # No script error, and nothing the CSP (or Trusted Types) had to refuse.
    problems = [m for m in report["console"] if "pageerror" in m or "Refused" in m]
    assert not problems, report["console"]

    # Offline, the page said so and waited; back online it went on from the server's offset.
    assert "network" in report["offlineStatus"].lower()
    big_url = report["bigUrl"]
    online = [r for r in report["requests"] if r["phase"] == "online" and r["url"] == big_url]
    assert online[0]["method"] == "HEAD"
    assert next(r for r in online if r["method"] == "PATCH")["offset"] == CUT_AT

    # Reloaded mid-upload: the page showed the unfinished upload, and the same file dropped
    # again continued from the server's offset; no upload was created again.
    before = report["offsetBeforeReload"]
    assert before == RELOAD_AT
    assert report["unfinishedAfterReload"] == [files["big"].name]
    after = [r for r in report["requests"] if r["phase"] == "resumed"]
    assert not [r for r in after if r["method"] == "POST"], after
    big_requests = [r for r in after if r["url"] == big_url]
    assert big_requests[0]["method"] == "HEAD"
    assert next(r for r in big_requests if r["method"] == "PATCH")["offset"] >= before
    assert 0 < report["offsetWhilePaused"] < BIG

    # The verdicts, as the page showed them; they survived the reload too.
    rows = {row["name"]: row for row in report["rowsAtEnd"]}
    assert rows[files["clean"].name]["state"] == "clean"
    rejected = rows[files["rejected"].name]
    assert rejected["state"] == "rejected"
    assert rejected["findings"]
    assert all(f["message"] for f in rejected["findings"])
    assert rows[files["big"].name]["state"] == "clean", rows
    assert report["unfinishedAtEnd"] == 0
    assert report["download"]["name"] == files["clean"].name
    assert report["downloadedSha256"] == sha256(files["clean"])

    # The server: one upload per file (the reload and the retries created none), every byte of
    # the big file where it belongs, and the verdicts the page showed.
    created = [
        e
        for e in running.log_events()
        if e.get("event") == "request" and e.get("route") == "/v1/tus/" and e["status"] == 201
    ]
    assert len(created) == len(files), created
    with running.client(running.create_key("tenant-a")) as client:
        big = inspected(client, rows[files["big"].name]["fileId"])
        assert big["state"] == "clean"
        assert big["sha256"] == sha256(files["big"])
        refused = inspected(client, rejected["fileId"])
    assert refused["state"] == "rejected"
    assert [f["message"] for f in refused["findings"]] == [
        f["message"] for f in rejected["findings"]
    ]
    print(f"screenshots: {out}")


def test_upload_page_embedded_by_an_allowed_origin_only(node: str, tmp_path: Path) -> None:
    """An application on a cors_origins origin frames the page, hands it a token by
    postMessage and hears the verdict back; a page on another origin cannot frame it."""
    allowed, other = free_port(), free_port()
    origins = json.dumps([f"http://127.0.0.1:{allowed}"])
    note = tmp_path / "report.txt"
    note.write_text("Quarterly report, plain text.\n" * 20)
    with make_run_server(tmp_path, FILEGATE_CORS_ORIGINS=origins) as live:
        args = {
            "filegate": live.base_url,
            "key": live.create_key("tenant-a", scopes="upload"),
            "allowed": allowed,
            "other": other,
            "file": str(note),
        }
        report = run_script(
            node, EMBED_SCRIPT, [json.dumps(args)], timeout=NODE_TIMEOUT, server_log=live.log_tail
        )

    assert report["hosts"] == ["127.0.0.1"]
    types = [message["type"] for message in report["messages"]]
    assert types == ["filegate:ready", "filegate:uploaded", "filegate:verdict"], types
    verdict = report["messages"][-1]["file"]
    assert (verdict["name"], verdict["state"], verdict["findings"]) == (note.name, "clean", [])
    # The token came by message: never in the frame's address.
    assert report["frameAddress"] == f"{live.base_url}/upload"
    # frame-ancestors: the other origin's frame shows the browser's error page, not ours.
    refused = report["otherOriginFrame"]
    assert refused["address"].startswith("chrome-error:"), refused
    assert not refused["dropZone"], refused
    assert refused["messages"] == [], refused
