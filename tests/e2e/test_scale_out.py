"""filegate past one machine: two API processes and two `filegate worker` processes, each with a
data dir of its own (nothing shared on disk), on PostgreSQL, Redis and S3 (a real SeaweedFS).

One test, because the deployment takes seconds to start and the stories share it:

- a worker is killed mid-inspection; the surviving worker takes the job over (its ``rescan``
  schedule, within a minute) and the file ends with one verdict and one ``file.clean`` webhook;
- a tus upload on API A, A killed with SIGKILL mid-PATCH after S3 took a part that was never
  acknowledged, resumed on API B: the file's sha256 is the client's;
- two clients PATCH one upload through different APIs: one gets 423, nothing is corrupted;
- an abandoned upload expires and an upload whose row was lost is reconciled: the bucket then
  holds the clean files and nothing else (no objects, no tails, no multipart uploads).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import delete, update
from tusclient import client as tus

from filegate.db.engine import Database
from filegate.db.models import UploadRow
from filegate.db.repository import Jobs
from filegate.domain import JobKind, JobState, utcnow
from tests.e2e.live import (
    MIB,
    OFFSET_OCTET_STREAM,
    TUS_BASE,
    LiveServer,
    TextPayload,
    WorkerProcess,
    clean_sha256,
    open_patch,
    tus_create,
    tus_headers,
    tus_offset,
    upload_id_of,
    wait_for,
)
from tests.support.receiver import Receiver, webhook_receiver
from tests.support.samples import noisy_png
from tests.support.seaweed import S3Server, s3_settings
from tests.support.services import forget_redis_keys

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LEASE_SECONDS = 3.0
LOCK_WAIT = 1.0
PATCH_SIZE = 6 * MIB  # the client's PATCHes: each ends inside an 8 MiB part
UPLOAD_SIZE = 29 * MIB + 4321
ACKNOWLEDGED = 3 * PATCH_SIZE  # two 8 MiB parts and a 2 MiB tail
SEND_PAUSE = 0.02
BLOCK = 256 * 1024


@dataclass(frozen=True)
class Deployment:
    """What every process shares: the database, the queue and the bucket (its env), and where
    the test's objects are in the bucket."""

    env: dict[str, str]
    database_url: str
    s3: S3Server
    bucket: str
    prefix: str

    def listing(self) -> tuple[list[str], list[str]]:
        """Every object and every open multipart upload under the test's prefix."""
        client = self.s3.client()
        objects = [
            item["Key"].removeprefix(f"{self.prefix}/")
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/"
            )
            for item in page.get("Contents", [])
        ]
        uploads = client.list_multipart_uploads(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        return sorted(objects), sorted(u["Key"] for u in uploads.get("Uploads", []))


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest, redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    s3_server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    database_url: str = request.getfixturevalue("fresh_postgres")
    storage = s3_settings(s3_server, bucket, monkeypatch)
    queue = f"filegate-scale-{uuid.uuid4().hex[:12]}"
    env = {f"FILEGATE_{name.upper()}": value for name, value in storage.items()}
    env |= {
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "FILEGATE_QUEUE_URL": redis_server,
        "FILEGATE_QUEUE_NAME": queue,
        "FILEGATE_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "FILEGATE_TUS_LOCK_WAIT_SECONDS": str(LOCK_WAIT),
        "FILEGATE_WEBHOOK_ALLOW_INTERNAL": "true",
        "FILEGATE_RECONCILE_GRACE_SECONDS": "0",
        # Workers log job starts at debug: that is how the test finds who runs a job.
        "FILEGATE_LOG_LEVEL": "debug",
    }
    prefix = storage["storage_url"].removeprefix(f"s3://{bucket}/")
    yield Deployment(env, database_url, s3_server, bucket, prefix)
    forget_redis_keys(redis_server, queue)


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        yield receiver


def host(tmp_path: Path, deployment: Deployment, name: str) -> LiveServer:
    """An API process on a data dir of its own: a separate machine, as far as disk goes."""
    return LiveServer(
        tmp_path,
        deployment.database_url,
        deployment.env,
        data_dir=tmp_path / name,
        name=name,
        embedded_worker=False,
    )


class PacedPatch(threading.Thread):
    """One PATCH body sent block by block with pauses, until stopped or the server is gone."""

    def __init__(self, server: LiveServer, url: str, key: str, payload: TextPayload) -> None:
        super().__init__(daemon=True)
        self.payload = payload
        self.offset = ACKNOWLEDGED
        self.sock = open_patch(server, url, key, self.offset, payload.size - self.offset)
        self.sent = 0
        self.stop = threading.Event()

    def run(self) -> None:
        for block in self.payload.chunks(self.offset, BLOCK):
            if self.stop.is_set():
                return
            self.sent += len(block)
            try:
                self.sock.sendall(block)
            except OSError:
                return
            time.sleep(SEND_PAUSE)


def patch_from(client: Any, url: str, payload: TextPayload, offset: int, end: int) -> Any:
    headers = tus_headers(extra={"Upload-Offset": str(offset), "Content-Type": OFFSET_OCTET_STREAM})
    return client.patch(urlsplit(url).path, content=payload.slice(offset, end), headers=headers)


def inspecting_worker(workers: list[WorkerProcess], file_id: str) -> WorkerProcess:
    def started(worker: WorkerProcess) -> bool:
        return any(
            e.get("event") == "job.started" and e.get("file_id") == file_id
            for e in worker.log_events()
        )

    wait_for(lambda: any(started(w) for w in workers), 90, "a worker to start the inspection")
    return next(w for w in workers if started(w))


def job_state(db: Database, kind: JobKind, subject: str) -> Any:
    with db.session() as session:
        return Jobs(session).get(kind, subject)


class Laps:
    """Prints how long each story took (pytest shows it for a failure or with -s)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, what: str) -> None:
        now = time.monotonic()
        print(f"{now - self.last:6.1f} s  {what}")
        self.last = now


def patch_until_done(client: Any, url: str, payload: TextPayload) -> Any:
    """What a tus client does after a 423: HEAD, PATCH the rest, again until the lock is free."""
    deadline = time.monotonic() + 30
    while True:
        answer = patch_from(client, url, payload, tus_offset(client, url), payload.size)
        if answer.status_code not in (409, 423) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_two_apis_and_two_workers_share_nothing_but_postgres_redis_and_s3(
    tmp_path: Path, deployment: Deployment, hooks: Receiver
) -> None:
    db = Database(deployment.database_url)
    api_a, api_b = host(tmp_path, deployment, "a"), host(tmp_path, deployment, "b")
    workers = [WorkerProcess(api_a, "worker-a"), WorkerProcess(api_b, "worker-b")]
    try:
        with api_a, api_b:
            added = api_a.run_cli("webhooks", "add", "--tenant", "demo", "--url", hooks.url)
            hooks.secret = added.stdout.splitlines()[-1]
            key = api_a.create_key("demo")
            for worker in workers:
                worker.start()
            # A worker's start-up sweep aborts writers' multipart uploads older than the grace
            # period, 0 here (for reconcile at the end): the uploads begin after it.
            for worker in workers:
                worker.wait_started()
            with api_a.client(key) as client_a, api_b.client(key) as client_b:
                lap = Laps()
                image, image_id, survivor = kill_a_worker_mid_inspection(db, client_a, workers)
                lap("worker killed mid-inspection")
                # While its lease runs out and the survivor's rescan comes round:
                upload_id = kill_an_api_mid_patch(deployment, api_a, api_b, key)
                lap("API killed mid-PATCH, resumed on the other, clean")
                api_a.start(port=api_a.port)  # as a restarted host would
                small_id = race_two_apis_for_one_upload(api_a, client_b, key)
                lap("PATCH race: 423, then done and clean")
                assert_one_verdict_and_one_webhook(
                    db, client_a, hooks, image, image_id, survivor=survivor
                )
                lap("inspection taken over: one verdict, one webhook")
                leave_an_upload_and_lose_another(db, client_a, client_b)
            api_b.run_cli("jobs", "run", "expire")
            api_b.run_cli("jobs", "run", "reconcile")
            lap("expire and reconcile")
    finally:
        for worker in workers:
            worker.stop()
        db.dispose()
    objects, multipart_uploads = deployment.listing()
    assert objects == sorted(f"clean/{i}" for i in (image_id, upload_id, small_id))
    assert multipart_uploads == []


def kill_a_worker_mid_inspection(
    db: Database, client: Any, workers: list[WorkerProcess]
) -> tuple[bytes, str, WorkerProcess]:
    """A large image is being inspected; the worker doing it is killed (SIGKILL)."""
    image = noisy_png(3200)
    posted = client.post("/v1/files", files={"file": ("big.png", image, "image/png")})
    assert posted.status_code == 202, posted.text
    image_id: str = posted.json()["id"]
    doomed = inspecting_worker(workers, image_id)
    assert job_state(db, JobKind.INSPECT, image_id).state is JobState.RUNNING
    doomed.kill()
    return image, image_id, next(w for w in workers if w is not doomed)


def kill_an_api_mid_patch(
    deployment: Deployment, api_a: LiveServer, api_b: LiveServer, key: str
) -> str:
    """Three PATCHes acknowledged on A; a fourth is killed with A once S3 holds a part of it
    (bytes past the offset); tuspy resumes on B from the acknowledged offset."""
    payload = TextPayload(UPLOAD_SIZE)
    with api_a.client(key) as client_a:
        url_a = tus_create(client_a, UPLOAD_SIZE, filename="notes.txt")
        for offset in range(0, ACKNOWLEDGED, PATCH_SIZE):
            answer = patch_from(client_a, url_a, payload, offset, offset + PATCH_SIZE)
            assert answer.status_code == 204, answer.text
    upload_id = upload_id_of(url_a)
    sender = PacedPatch(api_a, url_a, key, payload)
    sender.start()
    s3 = deployment.s3.client()
    name = f"{deployment.prefix}/uploads/{upload_id}"

    def unacknowledged_part() -> bool:
        listed = s3.list_multipart_uploads(Bucket=deployment.bucket, Prefix=name)
        (open_upload,) = listed.get("Uploads", [])
        parts = s3.list_parts(Bucket=deployment.bucket, Key=name, UploadId=open_upload["UploadId"])
        return len(parts.get("Parts", [])) >= 3

    try:
        wait_for(unacknowledged_part, 60, "S3 to take a part past the offset")
        api_a.kill()
    finally:
        sender.stop.set()
        sender.join(10)
        sender.sock.close()
    url_b = url_a.replace(api_a.base_url, api_b.base_url)
    with api_b.client(key, timeout=120) as client_b:
        assert tus_offset(client_b, url_b) == ACKNOWLEDGED
        resumed = tus.TusClient(
            api_b.base_url + TUS_BASE, headers={"Authorization": f"Bearer {key}"}
        ).uploader(file_stream=payload, url=url_b, chunk_size=PATCH_SIZE)
        assert resumed.offset == ACKNOWLEDGED
        resumed.upload()
        assert clean_sha256(client_b, upload_id, timeout=120) == payload.sha256()
    return upload_id


def race_two_apis_for_one_upload(api_a: LiveServer, client_b: Any, key: str) -> str:
    """A PATCH on A stalls mid-body holding the upload's lock: B's PATCH gets 423; once the
    stalled client is gone, B finishes the upload and its bytes are the client's."""
    small = TextPayload(2 * MIB)
    url = tus_create(client_b, small.size, filename="small.txt")
    with open_patch(api_a, url, key, 0, small.size) as stalled:
        stalled.sendall(small.slice(0, BLOCK))
        time.sleep(0.5)  # A holds the upload's advisory lock, mid-body
        locked = patch_from(client_b, url, small, 0, small.size)
        assert locked.status_code == 423, locked.text
        assert locked.json()["code"] == "tus_upload_locked"
    done = patch_until_done(client_b, url, small)
    assert done.status_code == 204, done.text
    small_id = upload_id_of(url)
    assert clean_sha256(client_b, small_id) == small.sha256()
    return small_id


def assert_one_verdict_and_one_webhook(
    db: Database,
    client: Any,
    hooks: Receiver,
    image: bytes,
    image_id: str,
    *,
    survivor: WorkerProcess,
) -> None:
    # The survivor's rescan schedule runs each minute; then the inspection itself.
    wait_for(
        lambda: client.get(f"/v1/files/{image_id}").json()["state"] != "quarantined",
        150,
        "the inspection to be taken over",
    )
    record = client.get(f"/v1/files/{image_id}").json()
    assert record["state"] == "clean", record
    assert record["sha256"] == hashlib.sha256(image).hexdigest()
    inspect = job_state(db, JobKind.INSPECT, image_id)
    assert (inspect.state, inspect.attempts) == (JobState.DONE, 2)
    assert inspecting_worker([survivor], image_id) is survivor
    wait_for(lambda: bool(clean_events(hooks, image_id)), 30, "the file.clean webhook")
    time.sleep(1.0)  # a duplicate, if there were one, would be here by now
    assert len({d.webhook_id for d in clean_events(hooks, image_id)}) == 1
    assert not [d for d in hooks.accepted("file.rejected") if d.data["file_id"] == image_id]


def leave_an_upload_and_lose_another(db: Database, client_a: Any, client_b: Any) -> None:
    """Two uploads with a part and a tail each: one expires, the other's row is deleted (a
    database restored from an older backup), so only ``reconcile`` can find its pieces."""
    payload = TextPayload(12 * MIB)
    abandoned = tus_create(client_a, payload.size, filename="gone.txt")
    lost = tus_create(client_b, payload.size, filename="lost.txt")
    for url in (abandoned, lost):
        answer = patch_from(client_a, url, payload, 0, 9 * MIB)
        assert answer.status_code == 204, answer.text
    with db.session() as session:
        session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id_of(abandoned))
            .values(expires_at=utcnow())
        )
        session.execute(delete(UploadRow).where(UploadRow.id == upload_id_of(lost)))


def clean_events(hooks: Receiver, file_id: str) -> list[Any]:
    return [d for d in hooks.accepted("file.clean") if d.data.get("file_id") == file_id]
