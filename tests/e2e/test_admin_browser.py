"""The review console in a real browser: issue #19's "in the console, release and delete with
reasons and see the audit log".

A server as ``make run`` starts it (SQLite in the data dir, the embedded worker), whose
``default`` profile lets reviewers override ``empty_file``, takes three uploads: an empty file
(rejected: ``empty_file``), a script (rejected: not overridable) and a note (clean). Headless
Chromium (``browser/admin_console.mjs``, playwright-core on the system's Chromium) signs in with
an admin key, filters to rejected files, releases the empty one and deletes the note, each with
a reason, and reads both actions in the audit log. No request may leave 127.0.0.1.

``FILEGATE_WRITE_SCREENSHOT=1`` also copies the released file's page to
docs/images/admin-console.png (docs/admin-console.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from filegate.config import builtin_profiles
from tests.e2e.live import HOST, LiveServer, inspected, profiles_env
from tests.e2e.test_status_browser import MIN_SCREENSHOT_BYTES, PNG_MAGIC, make_run_server
from tests.support.node import node_with_packages, run_script, unavailable

BROWSER_DIR = Path(__file__).parent / "browser"
SCRIPT = BROWSER_DIR / "admin_console.mjs"
CHROMIUM = Path("/usr/bin/chromium")
DOC_SCREENSHOT = Path(__file__).parents[2] / "docs" / "images" / "admin-console.png"
# admin_console.mjs gives up by itself after 80 s; this only catches a node that hangs anyway.
NODE_TIMEOUT = 100.0
INSPECTION_TIMEOUT = 30.0
RELEASE_REASON = "Empty placeholder files are expected from the intake form."
DELETE_REASON = "Uploaded to the wrong tenant by mistake."


@pytest.fixture(scope="session")
def node() -> str:
    if not CHROMIUM.exists():
        unavailable(f"the console test drives the system Chromium, and {CHROMIUM} is missing")
    return node_with_packages(BROWSER_DIR, "drive Chromium")


def reviewing_server(root: Path) -> LiveServer:
    """``make run``'s server, its default profile letting reviewers override empty files."""
    default = builtin_profiles()["default"].model_dump(mode="json")
    return make_run_server(root, **profiles_env(default={**default, "overridable": ["empty_file"]}))


def upload(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    response = client.post("/v1/files", files={"file": (name, data, "text/plain")})
    assert response.status_code == 202, response.text
    return inspected(client, response.json()["id"], INSPECTION_TIMEOUT)


def run_console(node: str, live: LiveServer, key: str, ids: tuple[str, str], shot: Path) -> Any:
    args = [live.base_url, key, *ids, str(shot)]
    return run_script(node, SCRIPT, args, timeout=NODE_TIMEOUT, server_log=live.log_tail)


def test_release_and_delete_with_reasons_in_a_real_browser(node: str, tmp_path: Path) -> None:
    with reviewing_server(tmp_path) as live:
        admin = live.create_key("tenant-a", scopes="upload,read,admin")
        with live.client(admin, timeout=10.0) as client:
            empty = upload(client, "placeholder.txt", b"")
            script = upload(client, "run.txt", b"#!/bin/sh\nrm -rf /\n")
            note = upload(client, "note.txt", b"a note for the review console\n")
            assert [f["code"] for f in empty["findings"]] == ["empty_file"]
            assert (empty["state"], script["state"], note["state"]) == (
                "rejected",
                "rejected",
                "clean",
            )

            shot = tmp_path / "admin-console.png"
            report = run_console(node, live, admin, (empty["id"], note["id"]), shot)

            # Signed in with a session cookie only the console's paths get, no script reads.
            assert report["signInUrl"].endswith("/admin/login")
            assert {
                "name": "filegate_admin",
                "httpOnly": True,
                "sameSite": "Strict",
                "path": "/admin",
            } in report["cookies"]
            # The list showed the two rejected files, not the clean one.
            listed = {row[0] for row in report["rejectedList"]}
            assert listed == {empty["id"], script["id"]}
            assert report["releaseActions"] == ["release", "reinspect", "delete"]
            released = report["afterRelease"]
            assert released["notice"] == "Done: release."
            assert released["audit"][0][2:6] == ["release", "rejected", "clean", RELEASE_REASON]
            deleted = report["afterDelete"]
            assert urlsplit(deleted["url"]).path == "/admin/audit"
            actions = [(row[1], row[3], row[6]) for row in deleted["audit"]]
            assert actions == [
                (note["id"], "delete", DELETE_REASON),
                (empty["id"], "release", RELEASE_REASON),
            ]

            # What the browser did is what the API sees.
            assert client.get(f"/v1/files/{empty['id']}").json()["state"] == "clean"
            assert client.get(f"/v1/files/{empty['id']}/content").status_code == 200
            assert client.get(f"/v1/files/{note['id']}").status_code == 404
            assert client.get(f"/v1/files/{script['id']}").json()["state"] == "rejected"

    hosts = {urlsplit(url).hostname for url in report["requested"]}
    assert hosts == {HOST}, report["requested"]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > MIN_SCREENSHOT_BYTES
    print(f"console screenshot: {shot}")
    if os.environ.get("FILEGATE_WRITE_SCREENSHOT"):
        DOC_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOC_SCREENSHOT)
