"""Background jobs on both queue engines (the SQLite queue file and the real Redis).

Every job is idempotent: run twice, the second run changes nothing. Schedules fired twice at
once do the work once. Lost triggers and failing jobs are recovered, retried, or given up on.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from filegate.cli import build_runtime
from filegate.config import Settings
from filegate.db.models import FileRow, JobRow, UploadRow, WebhookEventRow
from filegate.db.repository import Jobs
from filegate.domain import Area, JobKind, JobState, new_id, utcnow
from filegate.inspect.antivirus import ScannerConfig
from filegate.inspect.base import Inspection, SandboxRequest
from filegate.inspect.sandbox import Sandbox
from filegate.jobs.status import job_status
from filegate.services import webhooks
from tests.conftest import Api, running_api
from tests.support.receiver import Receiver, webhook_receiver
from tests.support.samples import png

TUS = {"Tus-Resumable": "1.0.0"}
TEXT = b"".join(b"line %d of a plain text file\n" % i for i in range(40))
HTML_AS_PNG = b"<html><script>alert(1)</script></html>"


@pytest.fixture
def job_settings(queue_settings: Settings) -> Settings:
    return queue_settings.model_copy(
        update={
            "webhook_allow_internal": True,
            "webhook_retry_seconds": 0.2,
            "job_retry_seconds": 0.1,
            "reconcile_grace_seconds": 0,
        }
    )


@pytest.fixture
def japi(job_settings: Settings, sandbox: Sandbox) -> Iterator[Api]:
    with running_api(job_settings, sandbox) as built:
        yield built


@pytest.fixture
def receiver(japi: Api) -> Iterator[Receiver]:
    with webhook_receiver() as hooks:
        _, hooks.secret = webhooks.create_endpoint(
            japi.runtime.db,
            tenant="tenant-a",
            url=hooks.url,
            events=None,
            allow_internal=True,
        )
        yield hooks


def upload(api: Api, data: bytes, name: str) -> str:
    response = api.upload(data, name)
    assert response.status_code == 202, response.text
    file_id: str = response.json()["id"]
    return file_id


def state_of(api: Api, file_id: str) -> str:
    state: str = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()["state"]
    return state


def ledger(api: Api, kind: JobKind, subject: str) -> Any:
    with api.runtime.db.session() as session:
        return Jobs(session).get(kind, subject)


def rerun(api: Api, kind: JobKind, subject: str) -> str | None:
    """Queue a finished job again, as an operator (or a duplicate trigger) would, and run it."""
    with api.runtime.db.session() as session:
        job = Jobs(session).want(kind, subject)
    assert job is not None, f"{kind}:{subject} was still queued or running"
    api.runtime.queue.dispatch([job])
    api.inspect()
    found = ledger(api, kind, subject)
    assert found.state is JobState.DONE
    outcome: str | None = found.outcome
    return outcome


def snapshot(api: Api) -> dict[str, Any]:
    """Everything a job could change: rows, stored objects, webhook events."""
    runtime = api.runtime
    with runtime.db.session() as session:
        files = sorted(
            (r.id, r.state, r.verdict, r.size, r.sha256, str(r.findings))
            for r in session.scalars(select(FileRow))
        )
        uploads = sorted((r.id, r.state, r.offset) for r in session.scalars(select(UploadRow)))
        events = sorted(
            (r.id, r.type, r.subject, r.state) for r in session.scalars(select(WebhookEventRow))
        )
    objects = {area.value: sorted(runtime.storage.keys(area)) for area in Area}
    return {"files": files, "uploads": uploads, "events": events, "objects": objects}


def expired_tus_upload(api: Api, data: bytes = b"partial bytes") -> str:
    created = api.client.post(
        "/v1/tus/",
        headers={**api.auth(), **TUS, "Upload-Length": "1000", "Upload-Metadata": ""},
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["Location"].rsplit("/", 1)[1]
    patched = api.client.patch(
        f"/v1/tus/{upload_id}",
        content=data,
        headers={
            **api.auth(),
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204, patched.text
    with api.runtime.db.session() as session:
        session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    return upload_id


def orphan_object(api: Api, area: Area = Area.QUARANTINE) -> str:
    """Bytes with no row: what a crash between an object's commit and its row's leaves."""
    key = new_id()
    writer = api.runtime.storage.writer(area, key)
    writer.write(b"orphaned")
    writer.commit()
    path = api.runtime.storage.local_path(area, key)
    assert path is not None
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    return key


# --- the path of one upload ----------------------------------------------------------------------


def test_uploads_are_inspected_then_promoted_through_the_queue(japi: Api) -> None:
    good = upload(japi, png(8, 8), "photo.png")
    bad = upload(japi, HTML_AS_PNG, "photo.png")
    assert japi.runtime.queue.pending() >= 2  # type: ignore[attr-defined]
    japi.inspect()
    assert state_of(japi, good) == "clean"
    assert state_of(japi, bad) == "rejected"
    for file_id, verdict in ((good, "clean"), (bad, "rejected")):
        inspect, promote = (
            ledger(japi, JobKind.INSPECT, file_id),
            ledger(japi, JobKind.PROMOTE, file_id),
        )
        assert (inspect.state, inspect.outcome) == (JobState.DONE, verdict)
        assert (promote.state, promote.outcome) == (JobState.DONE, verdict)
    storage = japi.runtime.storage
    assert storage.exists(Area.CLEAN, good)
    assert not storage.exists(Area.QUARANTINE, good)
    assert storage.exists(Area.QUARANTINE, bad)
    assert not storage.exists(Area.CLEAN, bad)


def test_a_duplicate_trigger_finds_nothing_to_claim(japi: Api) -> None:
    file_id = upload(japi, TEXT, "notes.txt")
    job = ledger(japi, JobKind.INSPECT, file_id)
    japi.runtime.queue.dispatch([job, job, job])
    japi.inspect()
    assert ledger(japi, JobKind.INSPECT, file_id).attempts == 1
    assert state_of(japi, file_id) == "clean"


# --- every job, twice ----------------------------------------------------------------------------


def test_every_job_type_run_twice_changes_nothing_the_second_time(
    japi: Api, receiver: Receiver
) -> None:
    clean = upload(japi, png(8, 8), "photo.png")
    rejected = upload(japi, HTML_AS_PNG, "photo.png")
    japi.inspect(wait_seconds=5)
    assert [d.type for d in receiver.accepted()].count("file.clean") == 1
    expired = expired_tus_upload(japi)
    orphan = orphan_object(japi)
    runner = japi.worker.runner

    # Per-file jobs and deliveries: the first run happened above; run each once more.
    before = snapshot(japi)
    assert rerun(japi, JobKind.INSPECT, clean) == "already_decided"
    assert rerun(japi, JobKind.PROMOTE, clean) == "already_promoted"
    assert rerun(japi, JobKind.INSPECT, rejected) == "already_decided"
    assert rerun(japi, JobKind.PROMOTE, rejected) == "already_promoted"
    (event,) = [e for e in webhooks_for(japi, clean) if e[1] == "file.clean"]
    assert rerun(japi, JobKind.DELIVER, event[0]) == "already_delivered"
    assert snapshot(japi) == before
    assert len(receiver.accepted("file.clean")) == 1

    # Schedules: the first run does the work, the second finds none and changes nothing.
    expected_first = {
        JobKind.EXPIRE: "expired=1 removed=1",
        JobKind.RECONCILE: (
            "orphan_objects=1 orphan_uploads=0 lost_files=0 misplaced=0 stale_temp=0"
        ),
        JobKind.RESCAN: "requeued=0 recovered=0",
        JobKind.PURGE: "purged=0 ledger_rows=0 signal_rows=0 process_rows=0 tokens=0 share_links=0",
    }
    expected_second = {
        JobKind.EXPIRE: "expired=0 removed=0",
        JobKind.RECONCILE: (
            "orphan_objects=0 orphan_uploads=0 lost_files=0 misplaced=0 stale_temp=0"
        ),
        JobKind.RESCAN: "requeued=0 recovered=0",
        JobKind.PURGE: "purged=0 ledger_rows=0 signal_rows=0 process_rows=0 tokens=0 share_links=0",
    }
    for kind, first in expected_first.items():
        assert runner.fire_slot(kind, f"first-{kind.value}")
        assert ledger(japi, kind, f"first-{kind.value}").outcome == first
        japi.inspect(wait_seconds=2)  # deliveries the first run asked for
        after_first = snapshot(japi)
        assert runner.fire_slot(kind, f"second-{kind.value}")
        assert ledger(japi, kind, f"second-{kind.value}").outcome == expected_second[kind]
        japi.inspect()
        assert snapshot(japi) == after_first, kind
    assert orphan not in snapshot(japi)["objects"]["quarantine"]
    assert expired not in [u[0] for u in snapshot(japi)["uploads"]]
    assert [d.type for d in receiver.accepted()].count("upload.expired") == 1


def webhooks_for(api: Api, subject: str) -> list[tuple[str, str, str]]:
    with api.runtime.db.session() as session:
        query = select(WebhookEventRow).where(WebhookEventRow.subject == subject)
        return [(r.id, r.type, r.state) for r in session.scalars(query)]


def test_purge_twice_removes_old_rejections_once(japi: Api, job_settings: Settings) -> None:
    rejected = upload(japi, HTML_AS_PNG, "photo.png")
    kept = upload(japi, TEXT, "notes.txt")
    japi.inspect()
    # Retention 0 s: every rejection is old enough. A clean file is never purged.
    with running_api(job_settings.model_copy(update={"rejected_retention_seconds": 0}), _NO) as api:
        assert api.worker.runner.fire_slot(JobKind.PURGE, "p1")
        assert ledger(api, JobKind.PURGE, "p1").outcome.startswith("purged=1 ")
        after = snapshot(api)
        assert api.worker.runner.fire_slot(JobKind.PURGE, "p2")
        assert ledger(api, JobKind.PURGE, "p2").outcome.startswith("purged=0 ")
        assert snapshot(api) == after
    assert rejected not in [f[0] for f in after["files"]]
    assert rejected not in after["objects"]["quarantine"]
    assert kept in after["objects"]["clean"]


class _Unused:
    """A sandbox stand-in for runtimes that never inspect."""

    def run(self, job: SandboxRequest) -> Inspection:
        raise AssertionError("this runtime must not inspect")


_NO: Any = _Unused()


# --- schedules -----------------------------------------------------------------------------------


def test_a_schedule_fired_on_two_workers_at_once_runs_once(
    japi: Api, job_settings: Settings, receiver: Receiver
) -> None:
    expired = expired_tus_upload(japi)
    # A second worker: its own DB pool and queue connection, as another process would have.
    other, other_worker = build_runtime(job_settings, run_job=_NO.run)
    runners = [japi.worker.runner, other_worker.runner]
    barrier = threading.Barrier(len(runners))
    ran: list[bool] = []

    def fire(runner: Any) -> None:
        barrier.wait()
        ran.append(runner.fire_slot(JobKind.EXPIRE, "2026-11-24T12:00Z"))

    threads = [threading.Thread(target=fire, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.db.dispose()
    assert sorted(ran) == [False, True]
    japi.inspect(wait_seconds=2)
    assert [d.data["upload_id"] for d in receiver.accepted("upload.expired")] == [expired]
    assert webhooks_for(japi, expired)
    assert len(webhooks_for(japi, expired)) == 1


def test_periodic_tasks_come_from_the_configured_schedules(
    job_settings: Settings, sandbox: Sandbox
) -> None:
    settings = job_settings.model_copy(
        update={"schedules": job_settings.schedules.model_copy(update={"purge": ""})}
    )
    _, worker = build_runtime(settings, run_job=sandbox.run)
    names = {task.name for task in worker.queue.huey._registry.periodic_tasks}
    assert names == {
        "filegate.schedule.expire",
        "filegate.schedule.reconcile",
        "filegate.schedule.rescan",
    }


# --- failures, retries, recovery -----------------------------------------------------------------


def test_a_lost_trigger_is_sent_again_by_rescan(japi: Api, job_settings: Settings) -> None:
    file_id = upload(japi, TEXT, "notes.txt")
    japi.runtime.queue.huey.flush()  # type: ignore[attr-defined]  # the broker lost it
    assert japi.inspect() == 0
    assert state_of(japi, file_id) == "quarantined"
    with running_api(job_settings.model_copy(update={"job_lease_seconds": 1}), _NO) as api:
        time.sleep(1.2)
        assert api.worker.runner.fire_slot(JobKind.RESCAN, "r1")
        assert ledger(api, JobKind.RESCAN, "r1").outcome == "requeued=0 recovered=1"
    japi.inspect()
    assert state_of(japi, file_id) == "clean"


def test_a_job_held_by_a_dead_worker_is_taken_over_after_its_lease(
    japi: Api, job_settings: Settings, sandbox: Sandbox
) -> None:
    file_id = upload(japi, TEXT, "notes.txt")
    with japi.runtime.db.session() as session:  # a worker claimed it, then died
        claimed = Jobs(session).claim(JobKind.INSPECT, file_id, timedelta(seconds=300))
    assert claimed is not None
    japi.inspect()
    assert state_of(japi, file_id) == "quarantined"  # held: nobody else may run it yet
    with running_api(job_settings.model_copy(update={"job_lease_seconds": 1}), sandbox) as api:
        time.sleep(1.2)
        assert api.worker.runner.recover() == 1
        api.inspect()
    assert state_of(japi, file_id) == "clean"
    assert ledger(japi, JobKind.INSPECT, file_id).attempts == 2


def test_an_inspection_that_keeps_failing_is_rejected_not_promoted(
    job_settings: Settings,
) -> None:
    calls: list[str] = []

    def broken(job: SandboxRequest) -> Inspection:
        calls.append(job.path)
        raise RuntimeError("the sandbox is broken")

    broken_sandbox: Any = type("Broken", (), {"run": staticmethod(broken)})()
    with running_api(job_settings, broken_sandbox) as api:
        file_id = upload(api, TEXT, "notes.txt")
        api.inspect(wait_seconds=3)
        record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
        job = ledger(api, JobKind.INSPECT, file_id)
    assert len(calls) == 3
    assert (job.state, job.attempts) == (JobState.FAILED, 3)
    assert "RuntimeError: the sandbox is broken" in job.error
    assert record["state"] == "rejected"
    assert [f["code"] for f in record["findings"]] == ["inspection_failed"]


def test_webhooks_are_signed_and_retried_after_a_500_with_the_same_id(
    japi: Api, receiver: Receiver
) -> None:
    receiver.script = [500, 500]
    file_id = upload(japi, png(8, 8), "photo.png")
    japi.inspect(wait_seconds=10)
    attempts = [d for d in receiver.all() if d.type == "file.clean"]
    assert [d.status for d in attempts] == [500, 500, 204]
    assert all(d.verified for d in attempts)
    assert len({d.webhook_id for d in attempts}) == 1
    assert attempts[-1].data["file_id"] == file_id
    (event_id, _, state) = webhooks_for(japi, file_id)[0]
    assert (event_id, state) == (attempts[0].webhook_id, "delivered")
    assert ledger(japi, JobKind.DELIVER, event_id).attempts == 3


def test_a_required_scanner_that_is_down_leaves_files_for_rescan(
    job_settings: Settings, sandbox: Sandbox, clamd: ScannerConfig
) -> None:
    down = job_settings.model_copy(
        update={"clamd_url": "tcp://127.0.0.1:9", "scanner_required": True}
    )
    with running_api(down, sandbox) as api:
        file_id = upload(api, TEXT, "notes.txt")
        api.inspect()
        assert state_of(api, file_id) == "quarantined"
        assert ledger(api, JobKind.INSPECT, file_id).outcome == "waiting_for_scanner"
    back = down.model_copy(update={"clamd_url": clamd.url})
    with running_api(back, sandbox) as api:
        assert api.worker.runner.fire_slot(JobKind.RESCAN, "after-clamd-is-back")
        assert ledger(api, JobKind.RESCAN, "after-clamd-is-back").outcome.startswith("requeued=1")
        api.inspect()
        assert state_of(api, file_id) == "clean"


# --- reconciliation, expiry ----------------------------------------------------------------------


def test_reconcile_fixes_orphans_both_ways(japi: Api) -> None:
    clean = upload(japi, TEXT, "notes.txt")
    rejected = upload(japi, HTML_AS_PNG, "photo.png")
    japi.inspect()
    storage = japi.runtime.storage
    orphan_q, orphan_c = orphan_object(japi), orphan_object(japi, Area.CLEAN)
    young = new_id()
    writer = storage.writer(Area.QUARANTINE, young)
    writer.write(b"between commit and row")
    writer.commit()
    lost = upload(japi, TEXT + b"another\n", "more.txt")
    japi.inspect()
    storage.delete(Area.CLEAN, lost)  # the disk lost a clean file's bytes
    storage.move(Area.QUARANTINE, Area.CLEAN, rejected)  # rejected bytes where clean ones live

    with running_api(
        japi.runtime.settings.model_copy(update={"reconcile_grace_seconds": 600}), _NO
    ) as api:
        assert api.worker.runner.fire_slot(JobKind.RECONCILE, "r1")
        outcome = ledger(api, JobKind.RECONCILE, "r1").outcome
    assert outcome == "orphan_objects=2 orphan_uploads=0 lost_files=1 misplaced=1 stale_temp=0"
    assert not storage.exists(Area.QUARANTINE, orphan_q)
    assert not storage.exists(Area.CLEAN, orphan_c)
    assert storage.exists(Area.QUARANTINE, young)  # too young to call an orphan
    assert storage.exists(Area.QUARANTINE, rejected)
    assert not storage.exists(Area.CLEAN, rejected)
    record = japi.client.get(f"/v1/files/{lost}", headers=japi.auth()).json()
    assert record["state"] == "rejected"
    assert "stored_object_missing" in [f["code"] for f in record["findings"]]
    assert state_of(japi, clean) == "clean"


def test_expired_uploads_lose_bytes_and_row(japi: Api) -> None:
    upload_id = expired_tus_upload(japi)
    head = japi.client.head(f"/v1/tus/{upload_id}", headers={**japi.auth(), **TUS})
    assert head.status_code == 410
    assert japi.runtime.storage.exists(Area.UPLOADS, upload_id)
    assert japi.worker.runner.fire_slot(JobKind.EXPIRE, "e1")
    assert not japi.runtime.storage.exists(Area.UPLOADS, upload_id)
    head = japi.client.head(f"/v1/tus/{upload_id}", headers={**japi.auth(), **TUS})
    assert head.status_code == 404


def test_jobs_status_counts_queued_running_failed_and_the_oldest_waiting(japi: Api) -> None:
    upload(japi, TEXT, "notes.txt")
    time.sleep(0.05)
    status = job_status(japi.runtime.db, japi.runtime.queue)  # type: ignore[arg-type]
    assert status["jobs"]["inspect"]["queued"] == 1
    assert status["jobs"]["inspect"]["oldest_waiting_seconds"] >= 0
    assert status["broker_pending"] >= 1
    japi.inspect()
    with japi.runtime.db.session() as session:
        session.execute(update(JobRow).values(state=JobState.FAILED.value, error="boom"))
    status = job_status(japi.runtime.db, japi.runtime.queue)  # type: ignore[arg-type]
    assert status["jobs"]["inspect"]["failed"] == 1
    assert status["recent_failures"][0]["error"] == "boom"
    assert "redis" in status["queue"] or "sqlite" in status["queue"]


def _partial(api: Api, data: bytes) -> str:
    headers = {**api.auth(), **TUS_HEADERS}
    created = api.client.post(
        "/v1/tus/", headers={**headers, "Upload-Length": str(len(data)), "Upload-Concat": "partial"}
    )
    assert created.status_code == 201, created.text
    upload_id = created.headers["location"].rsplit("/", 1)[1]
    sent = api.client.patch(
        f"/v1/tus/{upload_id}",
        headers={**headers, **TUS_PATCH},
        content=data,
    )
    assert sent.status_code == 204, sent.text
    return upload_id


def _final(api: Api, *parts: str) -> Any:
    listed = " ".join(f"/v1/tus/{part}" for part in parts)
    name = base64.b64encode(b"notes.txt").decode()
    headers = {**api.auth(), **TUS_HEADERS, "Upload-Concat": f"final;{listed}"}
    return api.client.post("/v1/tus/", headers={**headers, "Upload-Metadata": f"filename {name}"})


TUS_HEADERS = {"Tus-Resumable": "1.0.0"}
TUS_PATCH = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}


def test_reconcile_keeps_a_finished_partial_upload_until_a_final_joins_it(japi: Api) -> None:
    # A parallel upload whose first half finished long before the second: reconcile (grace 0
    # here) deleted the finished half as an orphan, and the final answered 503 for ever.
    first = _partial(japi, TEXT[:300])
    assert japi.worker.runner.fire_slot(JobKind.RECONCILE, "r-partial")
    assert ledger(japi, JobKind.RECONCILE, "r-partial").outcome.startswith(
        "orphan_objects=0 orphan_uploads=0"
    )
    assert japi.runtime.storage.exists(Area.UPLOADS, first)
    second = _partial(japi, TEXT[300:])
    joined = _final(japi, first, second)
    assert joined.status_code == 201, joined.text
    japi.inspect()
    file_id = joined.headers["location"].rsplit("/", 1)[1]
    content = japi.client.get(f"/v1/files/{file_id}/content", headers=japi.auth())
    assert content.content == TEXT


def test_expire_removes_stale_finished_partials_that_no_final_waits_for(japi: Api) -> None:
    alone, listed, other = (_partial(japi, TEXT[:100]) for _ in range(3))
    waiting = _final(japi, listed, _created_partial(japi, 100))  # the second part never arrives
    assert waiting.status_code == 201, waiting.text
    with japi.runtime.db.session() as session:
        session.execute(
            update(UploadRow)
            .where(UploadRow.id.in_([alone, listed]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert japi.worker.runner.fire_slot(JobKind.EXPIRE, "e-partials")
    storage = japi.runtime.storage
    assert not storage.exists(Area.UPLOADS, alone)  # finished, expired, joined by nobody
    assert storage.exists(Area.UPLOADS, listed)  # a waiting final still needs it
    assert storage.exists(Area.UPLOADS, other)  # not expired yet
    head = japi.client.head(f"/v1/tus/{alone}", headers={**japi.auth(), **TUS_HEADERS})
    assert head.status_code == 404  # bytes and row are gone, as for any expired upload


def _created_partial(api: Api, length: int) -> str:
    headers = {**api.auth(), **TUS_HEADERS, "Upload-Length": str(length)}
    created = api.client.post("/v1/tus/", headers={**headers, "Upload-Concat": "partial"})
    assert created.status_code == 201, created.text
    return str(created.headers["location"].rsplit("/", 1)[1])


def test_reconcile_sweeps_temp_files_of_uploads_whose_process_died(japi: Api) -> None:
    # A direct upload streams into <area>/.tmp; a kill -9 mid-upload left it there for ever.
    storage = japi.runtime.storage
    writer = storage.writer(Area.QUARANTINE, new_id())
    writer.write(b"half of an upload, then kill -9")
    tmp = japi.runtime.settings.resolved_storage_dir / "quarantine" / ".tmp"
    (left,) = tmp.iterdir()
    hour_ago = time.time() - 3600
    os.utime(left, (hour_ago, hour_ago))
    with running_api(
        japi.runtime.settings.model_copy(update={"reconcile_grace_seconds": 600}), _NO
    ) as api:
        assert api.worker.runner.fire_slot(JobKind.RECONCILE, "r-temp")
        outcome = ledger(api, JobKind.RECONCILE, "r-temp").outcome
    assert outcome.endswith("stale_temp=1")
    assert not left.exists()
    writer.abort()  # this process did not die; its writer finds nothing left to remove


def test_job_metrics_have_a_bounded_outcome_label(japi: Api) -> None:
    # "requeued=0 recovered=0" was a label value: a new Prometheus series for every count.
    assert japi.worker.runner.fire_slot(JobKind.RESCAN, "m1")
    exposed = japi.client.get("/metrics").text
    rescans = [line for line in exposed.splitlines() if 'kind="rescan"' in line]
    assert any('outcome="done"' in line for line in rescans), rescans
    assert not any("=0" in line.split("}")[0] for line in rescans if "outcome=" in line)
