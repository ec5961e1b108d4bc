"""The status page against live servers: a new release is compared with the one before (and
a bad one is called out), a stopped scanner turns `up` bad within a minute, and webhooks that
keep failing turn `jobs` to warn. Every server here is `filegate serve` in its own process."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from filegate.db.engine import Database
from filegate.db.repository import Files
from tests.e2e.live import LiveServer, wait_for
from tests.support.clamd import running_clamd
from tests.support.receiver import webhook_receiver

# Enough on each side for the deploy comparison (status.MIN_DEPLOY_REQUESTS is 20).
UPLOADS = 20
FLUSH_WAIT = 20.0  # servers write their signals every 5 s; a loaded CI box may be slow


def get_status(server: LiveServer, key: str) -> dict[str, Any]:
    with server.client(key) as client:
        response = client.get("/v1/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(
    server: LiveServer, key: str, holds: Callable[[dict[str, Any]], bool], what: str, timeout: float
) -> dict[str, Any]:
    """Poll GET /v1/status until ``holds``; the last answer is in the failure message."""
    deadline = time.monotonic() + timeout
    while True:
        body = get_status(server, key)
        if holds(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}: {body}")
        time.sleep(0.5)


def upload_traffic(server: LiveServer, key: str, count: int = UPLOADS) -> int:
    """``count`` small uploads, one at a time, each waited for until every verdict is in (a
    burst would measure the queue, not the release); returns how many answered 5xx. Files
    whose upload answered 500 were stored first, so they get verdicts too."""
    failed = 0
    database = Database(server.database_url)
    try:
        with server.client(key) as client:
            for index in range(count):
                files = {"file": (f"n{index}.txt", f"note {index}\n".encode(), "text/plain")}
                response = client.post("/v1/files", files=files)
                assert response.status_code in (202, 500), response.text
                failed += response.status_code == 500  # injected, after the bytes were stored
                wait_for(partial(_all_decided, database), 60.0, "the last upload's verdict")
    finally:
        database.dispose()
    return failed


def _all_decided(database: Database) -> bool:
    with database.session() as session:
        page = Files(session).page("status", state=None, before=None, limit=500)
    return all(f.state.value != "quarantined" for f in page)


def serve_release(
    server: LiveServer, key: str, uploads: int = UPLOADS
) -> tuple[int, dict[str, Any]]:
    """Upload, wait for every verdict and for the signals to reach the database; the 5xx
    count and the status as it then stands."""
    failed = upload_traffic(server, key, uploads)

    def recorded(body: dict[str, Any]) -> bool:
        current = body["deploy"]["current"]
        # An injected upload failure comes after the body is stored: every upload is judged.
        return bool(current["requests"] >= uploads and current["verdicts"] >= uploads)

    return failed, wait_status(server, key, recorded, "this release's signals", FLUSH_WAIT)


def test_each_release_is_compared_with_the_one_before(tmp_path: Path) -> None:
    first = LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", {}, name="r1")
    first.env["FILEGATE_RELEASE"] = "r1"
    with first:
        key = first.create_key("status", scopes="upload,read,admin")
        deploy = serve_release(first, key)[1]["deploy"]
        assert deploy["verdict"] == "ok"
        assert "first release recorded" in deploy["summary"]

    # A healthy release: compared, and nothing to report.
    with first.sibling("r2", {"FILEGATE_RELEASE": "r2"}) as second:
        body = serve_release(second, key)[1]
        deploy = body["deploy"]
        assert (deploy["release"], deploy["previous_release"]) == ("r2", "r1")
        assert deploy["verdict"] == "ok", deploy
        assert deploy["summary"].startswith("No change beyond noise since r2 started")
        assert [r["release"] for r in body["releases"]] == ["r1", "r2"]

    # A release that fails most uploads: bad, and the sentence says what changed. At 0.8 the
    # dice give the 8 of 20 failures the z-test needs (against 0 of 20) in all but 1e-4 runs.
    faulty = {"FILEGATE_RELEASE": "r3", "FILEGATE_FAULTS": "upload.error=0.8"}
    with first.sibling("r3", faulty) as third:
        failed, body = serve_release(third, key)
        assert failed >= 8
        deploy = body["deploy"]
        assert deploy["verdict"] == "bad", deploy
        assert deploy["summary"].startswith("Since r3 started")
        assert f"({failed} of {UPLOADS} requests failed)" in deploy["summary"]
        assert "the error rate rose from 0.0% to" in deploy["summary"]
        assert "(against r2's last hour)" in deploy["summary"]

    # A release whose inspections are slow: time to verdict is called out.
    slow = {"FILEGATE_RELEASE": "r4", "FILEGATE_FAULTS": "inspect.delay=2"}
    with first.sibling("r4", slow) as fourth:
        deploy = serve_release(fourth, key, 10)[1]["deploy"]
        assert deploy["verdict"] in ("warn", "bad"), (deploy["current"], deploy["previous"])
        assert "time to verdict p95 rose from" in deploy["summary"]


def test_a_stopped_scanner_turns_up_bad_within_a_minute(tmp_path: Path) -> None:
    clamd = running_clamd(tmp_path / "clamd")
    scanner = clamd.__enter__()
    running = True
    try:
        env = {"FILEGATE_CLAMD_URL": scanner.url, "FILEGATE_SCANNER_REQUIRED": "true"}
        with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
            key = server.create_key("status", scopes="admin")
            body = wait_status(
                server, key, lambda b: b["up"]["workers_seen"] >= 1, "a worker", FLUSH_WAIT
            )
            assert body["up"]["verdict"] == "ok", body["up"]
            assert body["up"]["checks"]["scanner"] == "ok"

            clamd.__exit__(None, None, None)  # clamd stops; filegate keeps running
            running = False
            stopped = time.monotonic()
            body = wait_status(
                server, key, lambda b: b["up"]["verdict"] == "bad", "up to turn bad", 60.0
            )
            assert time.monotonic() - stopped < 60.0
            assert body["up"]["summary"] == "The virus scanner is unreachable."
            assert body["up"]["checks"]["scanner"] == "failing"
    finally:
        if running:
            clamd.__exit__(None, None, None)


def test_failing_webhook_deliveries_turn_jobs_to_warn(tmp_path: Path) -> None:
    env = {"FILEGATE_WEBHOOK_ALLOW_INTERNAL": "true", "FILEGATE_WEBHOOK_RETRY_SECONDS": "0.5"}
    with (
        webhook_receiver() as receiver,
        LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server,
    ):
        receiver.script = [503] * 100
        key = server.create_key("status", scopes="upload,read,admin")
        with server.client(key) as client:
            hook = client.post("/v1/webhooks", json={"url": receiver.url})
            assert hook.status_code == 201, hook.text
            receiver.secret = hook.json()["secret"]
        upload_traffic(server, key, 2)
        body = wait_status(
            server,
            key,
            lambda b: b["jobs"]["verdict"] != "ok",
            "jobs to notice the failing webhook",
            30.0,
        )
        jobs = body["jobs"]
        assert jobs["verdict"] == "warn", jobs
        assert jobs["summary"] == "Webhook deliveries keep failing to 127.0.0.1."
        assert jobs["failing_webhook_endpoints"][0]["failing_events"] >= 1
        assert len(receiver.all()) >= 2
