"""Real `filegate worker` processes, killed with SIGKILL mid-job, on both queue engines.

Two deployments: the embedded default (SQLite database, SQLite queue file) and the scale-out
one (PostgreSQL, Redis). In each: a worker dies mid-promote and another mid-inspection, a new
worker takes over, and the file ends clean exactly once (one row, one stored object, one
``file.clean`` event id). And a schedule fired on two workers at once does its work once.
"""

from __future__ import annotations

import io
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from filegate.db.engine import Database
from filegate.db.models import FileRow, UploadRow
from filegate.db.repository import Files, Jobs
from filegate.domain import FileState, JobKind, JobState, utcnow
from tests.e2e.live import LiveServer, WorkerProcess, inspected, wait_for
from tests.support.receiver import Receiver, webhook_receiver
from tests.support.samples import noisy_png
from tests.support.services import forget_redis_keys

LEASE_SECONDS = 3.0
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite-db+sqlite-queue"),
        pytest.param(
            "redis", id="postgresql-db+redis-queue", marks=[pytest.mark.postgres, pytest.mark.redis]
        ),
    ]
)
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Database URL and queue settings of one deployment shape."""
    if request.param == "sqlite":
        yield {"database_url": f"sqlite:///{tmp_path / 'filegate.db'}"}
        return
    database_url: str = request.getfixturevalue("fresh_postgres")
    redis_url: str = request.getfixturevalue("redis_server")
    name = f"filegate-e2e-{uuid.uuid4().hex[:12]}"
    yield {
        "database_url": database_url,
        "FILEGATE_QUEUE_URL": redis_url,
        "FILEGATE_QUEUE_NAME": name,
    }
    forget_redis_keys(redis_url, name)


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path: Path, deployment: dict[str, str], hooks: Receiver) -> Iterator[LiveServer]:
    env = {k: v for k, v in deployment.items() if k.startswith("FILEGATE_")}
    env.update(
        {
            "FILEGATE_WEBHOOK_ALLOW_INTERNAL": "true",
            "FILEGATE_WEBHOOK_RETRY_SECONDS": "0.5",
            "FILEGATE_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        }
    )
    live = LiveServer(tmp_path, deployment["database_url"], env, embedded_worker=False)
    with live:
        added = live.run_cli("webhooks", "add", "--tenant", "demo", "--url", hooks.url)
        hooks.secret = added.stdout.splitlines()[-1]
        yield live


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(out, format="PNG")
    return out.getvalue()


def job(db: Database, kind: JobKind, subject: str) -> Any:
    with db.session() as session:
        return Jobs(session).get(kind, subject)


def assert_clean_exactly_once(
    live: LiveServer, db: Database, hooks: Receiver, file_id: str
) -> None:
    with db.session() as session:
        rows = session.scalar(
            select(func.count()).select_from(FileRow).where(FileRow.id == file_id)
        )
        record = Files(session).get(file_id)
    assert rows == 1
    assert record is not None
    assert record.state is FileState.CLEAN
    stored = sorted(p.parent.parent.name for p in live.storage_dir.rglob(file_id))
    assert stored == ["clean"], f"objects for {file_id}: {stored}"
    wait_for(lambda: bool(deliveries(hooks, file_id)), 30, "the file.clean webhook")
    time.sleep(1.0)  # a duplicate delivery, if there were one, would arrive by now
    ids = {d.webhook_id for d in deliveries(hooks, file_id)}
    assert len(ids) == 1, f"file.clean delivered under several ids: {ids}"
    assert all(d.verified for d in hooks.all())


def running(db: Database, file_id: str) -> bool:
    found = job(db, JobKind.INSPECT, file_id)
    return found is not None and found.state is JobState.RUNNING


def deliveries(hooks: Receiver, file_id: str) -> list[Any]:
    return [d for d in hooks.accepted("file.clean") if d.data.get("file_id") == file_id]


def test_a_worker_killed_mid_job_is_replaced_and_the_file_ends_clean_once(
    server: LiveServer, hooks: Receiver
) -> None:
    key = server.create_key("demo")
    db = Database(server.database_url)
    try:
        with server.client(key) as client:
            # 1. Killed by a crash point between moving the bytes and flipping the state.
            crashing = WorkerProcess(
                server, "worker-a", {"FILEGATE_FAILPOINT": "promote.before_state"}
            )
            crashing.start()
            first = client.post("/v1/files", files={"file": ("a.png", small_png(), "image/png")})
            assert first.status_code == 202, first.text
            first_id = first.json()["id"]
            assert crashing.wait_exit(90) == -signal.SIGKILL, crashing.log_tail()
            crashing.kill()
            with db.session() as session:
                assert Files(session).with_verdict(first_id)[1] is FileState.CLEAN
            assert job(db, JobKind.PROMOTE, first_id).state is JobState.RUNNING
            assert client.get(f"/v1/files/{first_id}").json()["state"] == "quarantined"
            time.sleep(LEASE_SECONDS)

            # 2. A new worker takes the job over once its lease has run out.
            with WorkerProcess(server, "worker-b") as second_worker:
                assert inspected(client, first_id, timeout=90)["state"] == "clean"
                assert_clean_exactly_once(server, db, hooks, first_id)

                # 3. Killed from outside while the sandbox is busy with a large image.
                big = client.post(
                    "/v1/files", files={"file": ("big.png", noisy_png(3200), "image/png")}
                )
                assert big.status_code == 202, big.text
                big_id = big.json()["id"]

                wait_for(lambda: running(db, big_id), 90, "the inspection to start")
                second_worker.kill()
            found = job(db, JobKind.INSPECT, big_id)
            assert found.state is JobState.RUNNING, "the inspection finished before the kill"
            with db.session() as session:
                assert Files(session).with_verdict(big_id)[1] is None
            time.sleep(LEASE_SECONDS)
            with WorkerProcess(server, "worker-c") as third_worker:
                assert inspected(client, big_id, timeout=120)["state"] == "clean"
                assert_clean_exactly_once(server, db, hooks, big_id)
                assert job(db, JobKind.INSPECT, big_id).attempts == 2

                # 4. Stopped at once (SIGTERM): the job goes back to the queue straight away.
                other = client.post(
                    "/v1/files", files={"file": ("other.png", noisy_png(3201), "image/png")}
                )
                other_id = other.json()["id"]
                wait_for(lambda: running(db, other_id), 90, "the next inspection to start")
                third_worker.terminate()
                assert third_worker.wait_exit(30) is not None, third_worker.log_tail()
                released = job(db, JobKind.INSPECT, other_id)
                assert released.state is JobState.QUEUED, third_worker.log_tail()
            with WorkerProcess(server, "worker-d"):  # no lease to wait for
                assert inspected(client, other_id, timeout=120)["state"] == "clean"
                assert_clean_exactly_once(server, db, hooks, other_id)
    finally:
        db.dispose()


def test_a_schedule_firing_on_two_workers_does_the_work_once(
    server: LiveServer, hooks: Receiver
) -> None:
    key = server.create_key("demo")
    with server.client(key) as client:
        created = client.post("/v1/tus/", headers={**TUS, "Upload-Length": "100"})
        assert created.status_code == 201, created.text
        upload_id = created.headers["Location"].rsplit("/", 1)[1]
        patched = client.patch(
            f"/v1/tus/{upload_id}",
            content=b"x" * 10,
            headers={
                **TUS,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert patched.status_code == 204, patched.text
    db = Database(server.database_url)
    with db.session() as session:
        session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id)
            .values(expires_at=utcnow() - timedelta(minutes=5))
        )
    every_minute = {
        "FILEGATE_LOG_LEVEL": "debug",  # job.started is a debug line
        "FILEGATE_SCHEDULES__EXPIRE": "* * * * *",
        "FILEGATE_SCHEDULES__RECONCILE": "",
        "FILEGATE_SCHEDULES__RESCAN": "",
        "FILEGATE_SCHEDULES__PURGE": "",
    }
    workers = [WorkerProcess(server, f"cron-{n}", every_minute) for n in (1, 2)]
    try:
        for worker in workers:
            worker.start()

        def fired_on_both() -> bool:
            events = [e for w in workers for e in w.log_events() if e.get("job") == "expire"]
            ran = {e["subject"] for e in events if e.get("event") == "job.started"}
            skipped = {e["slot"] for e in events if e.get("event") == "schedule.skipped"}
            return bool(ran & skipped)

        wait_for(fired_on_both, 150, "the expire schedule to fire on both workers in one minute")
    finally:
        for worker in workers:
            worker.stop()
    events = [e for w in workers for e in w.log_events() if e.get("job") == "expire"]
    started = [e["subject"] for e in events if e.get("event") == "job.started"]
    assert len(started) == len(set(started)), f"a minute ran twice: {started}"
    with db.session() as session:
        assert session.get(UploadRow, upload_id) is None
    db.dispose()
    assert not (server.data_dir / "storage" / "uploads" / upload_id[-2:] / upload_id).exists()
    wait_for(lambda: bool(hooks.accepted("upload.expired")), 30, "the upload.expired webhook")
    time.sleep(1.0)
    expired = hooks.accepted("upload.expired")
    assert [d.data["upload_id"] for d in expired] == [upload_id]
