"""The status page in a real browser: issue #14's "done when".

A server started as ``make run`` starts it (``filegate serve --embedded-worker`` with the
default embedded configuration: SQLite in the data dir, local storage, the embedded worker)
takes a few uploads; then headless Chromium (``browser/status_page.mjs``, playwright-core on the
system's Chromium) opens ``/status``. This proves the page renders the four questions with a
verdict each, that what it shows agrees with ``GET /v1/status``, that it needs an admin key
by default, and that ``status_public`` opens it (and only it) to anyone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.live import LiveServer, inspected, wait_for
from tests.support.node import node_with_packages, run_script, unavailable

BROWSER_DIR = Path(__file__).parent / "browser"
SCRIPT = BROWSER_DIR / "status_page.mjs"
CHROMIUM = Path("/usr/bin/chromium")
# status_page.mjs gives up by itself after 50 s; this only catches a node that hangs anyway.
NODE_TIMEOUT = 60.0
INSPECTION_TIMEOUT = 30.0
# Signals are written every 5 s (filegate.signals.FLUSH_SECONDS), worker heartbeats as often.
SIGNALS_TIMEOUT = 20.0
UPLOADS = 3

QUESTIONS = {
    "up": "Is it up?",
    "slow": "Is it slow?",
    "jobs": "Are jobs failing?",
    "deploy": "Did the last deploy change anything?",
}
VERDICTS = {"ok", "warn", "bad"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_SCREENSHOT_BYTES = 10_000


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with ``browser/node_modules`` installed from the lock file, and
    the system Chromium that playwright-core drives (its own browser download is never used)."""
    if not CHROMIUM.exists():
        unavailable(f"the status page test drives the system Chromium, and {CHROMIUM} is missing")
    return node_with_packages(BROWSER_DIR, "drive Chromium")


def make_run_server(root: Path, **env: str) -> LiveServer:
    """A server as ``make run`` starts one, in ``root``, not yet started.

    ``FILEGATE_DATABASE_URL`` is left empty so the server picks its default, a SQLite file in
    the data dir; the same file is the one migrated before it starts.
    """
    data_dir = root / "var"
    data_dir.mkdir()
    default_database = f"sqlite:///{data_dir / 'filegate.db'}"
    return LiveServer(root, default_database, {"FILEGATE_DATABASE_URL": "", **env})


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    cards: list[dict[str, Any]]
    text: str
    screenshot: Path


def open_status_page(node: str, live: LiveServer, screenshot: Path, key: str | None) -> Page:
    """``/status`` in headless Chromium: what its DOM showed, and its full-page screenshot."""
    args = [f"{live.base_url}/status", str(screenshot), *([key] if key else [])]
    report = run_script(node, SCRIPT, args, timeout=NODE_TIMEOUT, server_log=live.log_tail)
    print(f"status page screenshot: {screenshot}")
    return Page(report["status"], report["title"], report["cards"], report["text"], screenshot)


def assert_four_verdicts(page: Page) -> dict[str, str]:
    """The page shows the four questions, each with a verdict; returns question -> verdict."""
    assert page.status == 200
    assert [card["question"] for card in page.cards] == list(QUESTIONS), page.cards
    for card in page.cards:
        assert card["verdict"] in VERDICTS, card
        assert card["heading"] == QUESTIONS[card["question"]], card
        # What a reader sees is the verdict the markup (and its colour) carries.
        assert card["verdictText"] == card["verdict"].upper(), card
        assert card["summary"], card
    for question in QUESTIONS.values():
        assert question in page.text
    verdicts = {card["question"]: card["verdict"] for card in page.cards}
    # The title leads with the worst verdict, so a tab or a bookmark shows it.
    worst = max(verdicts.values(), key=["ok", "warn", "bad"].index)
    assert page.title.startswith(worst.upper()), page.title
    data = page.screenshot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > MIN_SCREENSHOT_BYTES, f"a {len(data)}-byte screenshot is blank"
    return verdicts


def status_json(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/v1/status")
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


@pytest.fixture
def running(tmp_path: Path) -> Iterator[LiveServer]:
    with make_run_server(tmp_path) as server:
        yield server


def test_status_page_shows_four_verdicts(node: str, running: LiveServer, tmp_path: Path) -> None:
    admin = running.create_key("tenant-a", scopes="upload,read,admin")
    with running.client(admin, timeout=10.0) as client:
        ids = []
        for n in range(UPLOADS):
            files = {"file": (f"note-{n}.txt", f"status page upload {n}\n".encode(), "text/plain")}
            response = client.post("/v1/files", files=files)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        for file_id in ids:
            assert inspected(client, file_id, INSPECTION_TIMEOUT)["state"] == "clean"

        def flushed() -> bool:
            # The uploads' signals reached the database, and the worker's heartbeat too.
            report = status_json(client)
            verdicts = report["slow"]["time_to_verdict"]["last_5_minutes"]["samples"]
            return verdicts >= UPLOADS and report["up"]["workers_seen"] >= 1

        wait_for(flushed, SIGNALS_TIMEOUT, "the uploads' signals and a worker heartbeat")

        page = open_status_page(node, running, tmp_path / "status.png", admin)
        verdicts = assert_four_verdicts(page)
        report = status_json(client)

    assert verdicts == {question: report[question]["verdict"] for question in QUESTIONS}
    assert verdicts["jobs"] == "ok", report["jobs"]

    # Not public by default: no key, no page (and none of it in the answer).
    anonymous = httpx.get(f"{running.base_url}/status", timeout=10.0)
    assert anonymous.status_code == 401
    assert "Is it up?" not in anonymous.text
    # A key without the admin scope is not enough either.
    reader = running.create_key("tenant-a", scopes="upload,read")
    with running.client(reader, timeout=10.0) as client:
        assert client.get("/status").status_code == 403


def test_public_status_page_needs_no_key(node: str, tmp_path: Path) -> None:
    with make_run_server(tmp_path, FILEGATE_STATUS_PUBLIC="true") as server:
        page = open_status_page(node, server, tmp_path / "public-status.png", key=None)
        assert_four_verdicts(page)
        # Only the page is public: its JSON still needs an admin key.
        assert httpx.get(f"{server.base_url}/v1/status", timeout=10.0).status_code == 401
