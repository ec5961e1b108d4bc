"""Two workers inspecting the same file: only the first verdict is stored and acted on."""

from __future__ import annotations

from filegate.domain import Area, FileState, Finding, Verdict
from filegate.inspect.base import Inspection, SandboxRequest
from filegate.inspect.sandbox import Sandbox
from filegate.services.inspection import Inspector, inspect_job
from tests.conftest import Api

TEXT = b"".join(b"line %d of a text file\n" % i for i in range(50))


def test_a_losing_rejection_does_not_touch_the_winners_clean_file(
    api: Api, sandbox: Sandbox
) -> None:
    file_id = api.upload(TEXT, "notes.txt").json()["id"]
    runtime = api.runtime
    db, storage, queue = runtime.db, runtime.storage, runtime.queue
    winner = Inspector(sandbox.run, runtime.settings.profile)

    def loser_run(job: SandboxRequest) -> Inspection:
        assert inspect_job(db, storage, queue, winner, file_id) == "clean"
        failed = Finding("inspection_failed", "the file vanished mid-read")
        return Inspection(Verdict(FileState.REJECTED, (failed,), None), "notes.txt")

    loser = Inspector(loser_run, runtime.settings.profile)
    assert inspect_job(db, storage, queue, loser, file_id) == "already_inspected"
    api.inspect()
    assert storage.exists(Area.CLEAN, file_id)
    assert not storage.exists(Area.QUARANTINE, file_id)
    served = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert served.status_code == 200
    assert served.content == TEXT


def test_a_losing_clean_verdict_leaves_a_rejected_file_in_quarantine(
    api: Api, sandbox: Sandbox
) -> None:
    file_id = api.upload(TEXT, "notes.txt").json()["id"]
    runtime = api.runtime
    db, storage, queue = runtime.db, runtime.storage, runtime.queue

    def rejecting_run(job: SandboxRequest) -> Inspection:
        finding = Finding("script", "pretend it is a script")
        return Inspection(Verdict(FileState.REJECTED, (finding,), "text/plain"), "notes.txt")

    winner = Inspector(rejecting_run, runtime.settings.profile)

    def loser_run(job: SandboxRequest) -> Inspection:
        assert inspect_job(db, storage, queue, winner, file_id) == "rejected"
        return sandbox.run(job)

    loser = Inspector(loser_run, runtime.settings.profile)
    assert inspect_job(db, storage, queue, loser, file_id) == "already_inspected"
    api.inspect()
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    assert record["state"] == "rejected"
    assert storage.exists(Area.QUARANTINE, file_id)
    assert not storage.exists(Area.CLEAN, file_id)
