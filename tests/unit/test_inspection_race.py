"""Two workers inspecting the same file: only the verdict that is written moves bytes."""

from __future__ import annotations

from filegate.domain import Area, FileState, Finding, Verdict
from filegate.inspect.base import Job, Result
from filegate.inspect.sandbox import Sandbox
from filegate.services.inspection import Inspector, inspect_quarantined
from tests.conftest import Api

TEXT = b"".join(b"line %d of a text file\n" % i for i in range(50))


def test_a_losing_rejection_does_not_move_the_winners_clean_file(
    api: Api, sandbox: Sandbox
) -> None:
    """The loser's inspection fails because the winner moved the file out from under it."""
    file_id = api.upload(TEXT, "notes.txt").json()["id"]
    db, storage, policy_for = api.runtime.db, api.runtime.storage, api.runtime.settings.profile
    winner = Inspector(sandbox.run, policy_for)

    def loser_run(job: Job) -> Result:
        assert inspect_quarantined(db, storage, winner, file_id) is FileState.CLEAN
        failed = Finding("inspection_failed", "the file vanished mid-read")
        return Result(Verdict(FileState.REJECTED, (failed,), None), "notes.txt")

    assert inspect_quarantined(db, storage, Inspector(loser_run, policy_for), file_id) is None
    assert storage.exists(Area.CLEAN, file_id)
    assert not storage.exists(Area.QUARANTINE, file_id)
    served = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert served.status_code == 200
    assert served.content == TEXT


def test_a_losing_clean_verdict_leaves_a_rejected_file_in_quarantine(
    api: Api, sandbox: Sandbox
) -> None:
    file_id = api.upload(TEXT, "notes.txt").json()["id"]
    db, storage, settings = api.runtime.db, api.runtime.storage, api.runtime.settings

    def rejecting_run(job: Job) -> Result:
        finding = Finding("script", "pretend it is a script")
        return Result(Verdict(FileState.REJECTED, (finding,), "text/plain"), "notes.txt")

    winner = Inspector(rejecting_run, settings.profile)

    def loser_run(job: Job) -> Result:
        assert inspect_quarantined(db, storage, winner, file_id) is FileState.REJECTED
        return sandbox.run(job)

    assert inspect_quarantined(db, storage, Inspector(loser_run, settings.profile), file_id) is None
    assert storage.exists(Area.QUARANTINE, file_id)
    assert not storage.exists(Area.CLEAN, file_id)
