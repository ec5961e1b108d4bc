"""The review actions (services/review.py) and their audit log, on SQLite and PostgreSQL: each
action and each refusal, the bytes where the new state keeps them, the webhook event, and an
audit row that nothing can change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from filegate.config import Settings, action_code_problems, load_settings
from filegate.db.repository import AuditLog, Jobs, WebhookEndpoints, WebhookEvents
from filegate.domain import (
    Area,
    EventType,
    FileFilter,
    FileState,
    Finding,
    JobKind,
    JobState,
    ReviewAction,
    Scope,
    WebhookEndpointRecord,
    new_id,
    utcnow,
)
from filegate.errors import ErrorCode, FilegateError
from filegate.services import review
from filegate.services.keys import create_key, revoke_key
from tests.conftest import Api
from tests.support.review import (
    EMPTY,
    MALWARE,
    OVERRIDABLE,
    SCRIPT,
    TEXT,
    current,
    new_admin_key,
    review_settings,
    stored,
)


@pytest.fixture
def settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The ``api`` fixture (tests/conftest.py) runs on these."""
    return review_settings(tmp_path, database_url, monkeypatch)


@pytest.fixture
def services(api: Api) -> review.Services:
    runtime = api.runtime
    return review.Services(runtime.db, runtime.storage, runtime.queue, runtime.settings)


@pytest.fixture
def who(api: Api) -> review.Reviewer:
    key, _ = new_admin_key(api, "alice")
    return review.reviewer(api.runtime.db, key.id)


def hook(api: Api) -> str:
    endpoint = WebhookEndpointRecord(
        id=new_id(),
        tenant="tenant-a",
        url="http://93.184.215.14/hook",
        events=frozenset(EventType),
        created_at=utcnow(),
    )
    with api.runtime.db.session() as session:
        WebhookEndpoints(session).add(endpoint, "whsec_" + "A" * 43)
    return endpoint.id


def events(api: Api, file_id: str) -> list[str]:
    with api.runtime.db.session() as session:
        rows = WebhookEvents(session).for_subject(file_id)
    return sorted(row.type.value for row in rows)


def audit_of(api: Api, file_id: str) -> list[review.AuditRecord]:
    with api.runtime.db.session() as session:
        return AuditLog(session).for_file(file_id, "tenant-a", 10)


def refused(call: object) -> FilegateError:
    assert callable(call)
    with pytest.raises(FilegateError) as caught:
        call()
    return caught.value


# --- release ----------------------------------------------------------------------------------


def test_release_moves_the_bytes_to_clean_sends_file_clean_and_audits(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    hook(api)
    record = stored(api, FileState.REJECTED, (EMPTY,))

    row = review.act(services, who, ReviewAction.RELEASE, record.id, "  false positive  ")

    released = current(api, record.id)
    assert released is not None
    assert released.state is FileState.CLEAN
    storage = api.runtime.storage
    assert storage.exists(Area.CLEAN, record.id)
    assert not storage.exists(Area.QUARANTINE, record.id)
    assert b"".join(storage.read(Area.CLEAN, record.id)) == TEXT
    assert released.sha256 == hashlib.sha256(TEXT).hexdigest()
    assert events(api, record.id) == ["file.clean"]
    assert (row.action, row.before, row.after, row.reason) == (
        ReviewAction.RELEASE,
        FileState.REJECTED,
        FileState.CLEAN,
        "false positive",
    )
    assert row.actor == "alice (" + row.actor.split("(")[1]
    assert row.actor_key_id == who.key_id
    assert row.extra["findings"] == ["empty_file"]
    assert audit_of(api, record.id) == [row]
    # And the file is served now.
    answer = api.client.get(f"/v1/files/{record.id}/content", headers=api.auth())
    assert (answer.status_code, answer.content) == (200, TEXT)


@pytest.mark.parametrize(
    ("findings", "why"),
    [
        pytest.param((EMPTY, MALWARE), "antivirus findings are never released", id="antivirus"),
        pytest.param((SCRIPT,), "overridable does not list script", id="not-overridable"),
        pytest.param((), "without findings", id="no-findings"),
    ],
)
def test_release_is_refused_unless_every_finding_may_be_overridden(
    api: Api,
    services: review.Services,
    who: review.Reviewer,
    findings: tuple[Finding, ...],
    why: str,
) -> None:
    record = stored(api, FileState.REJECTED, findings)

    error = refused(lambda: review.act(services, who, ReviewAction.RELEASE, record.id, "ok"))

    assert error.code is ErrorCode.REVIEW_REFUSED
    assert why in error.message
    assert current(api, record.id) == record
    assert api.runtime.storage.exists(Area.QUARANTINE, record.id)
    assert not api.runtime.storage.exists(Area.CLEAN, record.id)
    assert audit_of(api, record.id) == []


def test_antivirus_findings_are_refused_even_when_the_config_is_bypassed(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    # The config refuses malware_found in overridable; the code refuses it again regardless.
    profile = services.settings.profiles["default"]
    bypassed = profile.model_copy(update={"overridable": [*OVERRIDABLE, "malware_found"]})
    settings = services.settings.model_copy(
        update={"profiles": {**services.settings.profiles, "default": bypassed}}
    )
    record = stored(api, FileState.REJECTED, (MALWARE,))
    lax = review.Services(services.db, services.storage, services.queue, settings)

    error = refused(lambda: review.act(lax, who, ReviewAction.RELEASE, record.id, "trust me"))

    assert "antivirus" in error.message
    with pytest.raises(FilegateError) as invalid:
        load_settings(
            profiles={
                "default": {
                    "extensions": ["txt"],
                    "types": ["text/plain"],
                    "overridable": ["malware_found"],
                }
            }
        )
    problems = [str(problem) for problem in invalid.value.extra["problems"]]  # type: ignore[attr-defined]
    assert problems == [
        "profiles.default.overridable: Value error, antivirus findings are never overridable: "
        "malware_found"
    ]


def test_a_release_that_loses_a_race_puts_the_bytes_back(
    api: Api, services: review.Services, who: review.Reviewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    # Another reviewer deleted it between this one's read and its update.
    monkeypatch.setattr(review.ReviewFiles, "decide", lambda *_, **__: False)

    error = refused(lambda: review.act(services, who, ReviewAction.RELEASE, record.id, "fine"))

    assert error.code is ErrorCode.REVIEW_REFUSED
    assert "changed meanwhile" in error.message
    assert api.runtime.storage.exists(Area.QUARANTINE, record.id)
    assert not api.runtime.storage.exists(Area.CLEAN, record.id)
    assert audit_of(api, record.id) == []


def test_check_config_names_an_overridable_code_no_finding_has(settings: Settings) -> None:
    profiles = dict(settings.profiles)
    profiles["images"] = profiles["images"].model_copy(update={"overridable": ["empty_fle"]})
    odd = settings.model_copy(update={"profiles": profiles})
    known = {"empty_file", "type_not_allowed"}
    assert [str(p) for p in action_code_problems(odd, known, None)] == [
        "profiles.images.overridable: no finding has the code 'empty_fle' (the codes: "
        "docs/inspection.md)"
    ]


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_every_action_needs_a_reason(
    api: Api, services: review.Services, who: review.Reviewer, reason: str
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    for action in ReviewAction:
        error = refused(lambda a=action: review.act(services, who, a, record.id, reason))
        assert error.code is ErrorCode.INVALID_REQUEST
        assert "reason" in error.message
    assert current(api, record.id) == record
    assert audit_of(api, record.id) == []


def test_a_reason_has_a_length_limit(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    long = "x" * (review.MAX_REASON + 1)
    error = refused(lambda: review.act(services, who, ReviewAction.RELEASE, record.id, long))
    assert error.code is ErrorCode.INVALID_REQUEST


# --- reject, delete, re-inspect ---------------------------------------------------------------


def test_reject_parks_the_bytes_sends_file_rejected_and_audits(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    hook(api)
    record = stored(api, FileState.CLEAN)

    row = review.act(services, who, ReviewAction.REJECT, record.id, "reported by a user")

    rejected = current(api, record.id)
    assert rejected is not None
    assert rejected.state is FileState.REJECTED
    assert [f.code for f in rejected.findings] == ["rejected_in_review"]
    assert api.runtime.storage.exists(Area.QUARANTINE, record.id)
    assert not api.runtime.storage.exists(Area.CLEAN, record.id)
    assert events(api, record.id) == ["file.rejected"]
    assert (row.before, row.after) == (FileState.CLEAN, FileState.REJECTED)
    answer = api.client.get(f"/v1/files/{record.id}/content", headers=api.auth())
    assert answer.status_code == 403
    # A reviewer's own rejection may be undone by a reviewer, whatever the profile lists.
    back = review.act(services, who, ReviewAction.RELEASE, record.id, "mistake")
    assert back.after is FileState.CLEAN
    assert api.client.get(f"/v1/files/{record.id}/content", headers=api.auth()).content == TEXT


def test_delete_removes_row_and_bytes_and_the_audit_row_stays(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    record = stored(api, FileState.REJECTED, (SCRIPT,))

    row = review.act(services, who, ReviewAction.DELETE, record.id, "malicious upload")

    assert current(api, record.id) is None
    assert not any(api.runtime.storage.exists(area, record.id) for area in Area)
    assert (row.before, row.after, row.extra["name"]) == (FileState.REJECTED, None, "note.txt")
    assert audit_of(api, record.id) == [row]
    assert list(review.export(api.runtime.db, "tenant-a")) == [row]


def test_reinspect_queues_the_inspection_again_and_it_decides(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    record = stored(api, FileState.REJECTED, (Finding("type_not_allowed", "stale verdict"),))

    row = review.act(services, who, ReviewAction.REINSPECT, record.id, "profile was fixed")

    waiting = current(api, record.id)
    assert waiting is not None
    assert (waiting.state, waiting.findings) == (FileState.QUARANTINED, ())
    with api.runtime.db.session() as session:
        job = Jobs(session).get(JobKind.INSPECT, record.id)
    assert job is not None
    assert job.state is JobState.QUEUED
    assert (row.before, row.after) == (FileState.REJECTED, FileState.QUARANTINED)
    api.inspect()
    judged = current(api, record.id)
    assert judged is not None
    assert judged.state is FileState.CLEAN
    assert api.runtime.storage.exists(Area.CLEAN, record.id)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (FileState.CLEAN, ReviewAction.RELEASE),
        (FileState.REJECTED, ReviewAction.REJECT),
        (FileState.QUARANTINED, ReviewAction.REINSPECT),
        (FileState.QUARANTINED, ReviewAction.RELEASE),
    ],
)
def test_an_action_for_another_state_is_refused(
    api: Api,
    services: review.Services,
    who: review.Reviewer,
    state: FileState,
    action: ReviewAction,
) -> None:
    record = stored(api, state, (EMPTY,) if state is not FileState.CLEAN else ())
    error = refused(lambda: review.act(services, who, action, record.id, "why not"))
    assert error.code is ErrorCode.REVIEW_REFUSED
    assert audit_of(api, record.id) == []


def test_another_tenants_file_is_not_found(
    api: Api, services: review.Services, who: review.Reviewer
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,), tenant="tenant-b")
    for action in ReviewAction:
        error = refused(lambda a=action: review.act(services, who, a, record.id, "mine now"))
        assert error.code is ErrorCode.FILE_NOT_FOUND
    assert current(api, record.id) == record


def test_a_revoked_or_non_admin_key_is_no_reviewer(api: Api) -> None:
    db = api.runtime.db
    admin, _ = create_key(db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN}))
    reader, _ = create_key(db, tenant="tenant-a", scopes=frozenset({Scope.READ, Scope.UPLOAD}))
    assert review.reviewer(db, admin.id).key_id == admin.id
    revoke_key(db, admin.id)
    for key_id in (admin.id, reader.id, new_id()):
        error = refused(lambda k=key_id: review.reviewer(db, k))
        assert error.code is ErrorCode.UNAUTHENTICATED


# --- the audit log ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE review_audit SET reason = 'rewritten'",
        "DELETE FROM review_audit",
    ],
)
def test_the_audit_log_refuses_update_and_delete(
    api: Api, services: review.Services, who: review.Reviewer, statement: str
) -> None:
    record = stored(api, FileState.REJECTED, (EMPTY,))
    row = review.act(services, who, ReviewAction.RELEASE, record.id, "false positive")

    with pytest.raises(DatabaseError, match="append-only"), api.runtime.db.session() as session:
        session.execute(text(statement))

    assert audit_of(api, record.id) == [row]


def test_the_repository_has_no_way_to_change_a_row() -> None:
    assert {name for name in vars(AuditLog) if not name.startswith("_")} == {
        "add",
        "for_file",
        "recent",
        "page",
    }


def test_the_export_pages_through_every_row(
    api: Api, services: review.Services, who: review.Reviewer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(review, "EXPORT_BATCH", 2)
    rows = [
        review.act(services, who, ReviewAction.DELETE, stored(api, FileState.CLEAN).id, f"n{n}")
        for n in range(5)
    ]
    assert list(review.export(api.runtime.db, "tenant-a")) == rows
    assert list(review.export(api.runtime.db, "tenant-b")) == []


# --- the list ---------------------------------------------------------------------------------


def test_the_list_filters_by_state_profile_finding_and_date(api: Api) -> None:
    empty = stored(api, FileState.REJECTED, (EMPTY,))
    script = stored(api, FileState.REJECTED, (SCRIPT, Finding("name_colon", "a colon")))
    clean = stored(api, FileState.CLEAN)
    stored(api, FileState.REJECTED, (SCRIPT,), tenant="tenant-b")
    db = api.runtime.db

    def ids(**wanted: object) -> list[str]:
        page, _ = review.list_files(db, FileFilter(tenant="tenant-a", **wanted), None)  # type: ignore[arg-type]
        return [r.id for r in page]

    assert ids() == [clean.id, script.id, empty.id]
    assert ids(state=FileState.REJECTED) == [script.id, empty.id]
    assert ids(code="script") == [script.id]
    assert ids(code="name_colon", state=FileState.REJECTED) == [script.id]
    assert ids(code="malware_found") == []
    assert ids(profile="images") == []
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    assert len(ids(since=today)) == 3
    assert ids(until=today) == []


def test_the_list_pages_by_cursor(api: Api) -> None:
    made = [stored(api, FileState.CLEAN).id for _ in range(5)]
    wanted = FileFilter(tenant="tenant-a")
    first, cursor = review.list_files(api.runtime.db, wanted, None, limit=3)
    assert cursor is not None
    second, end = review.list_files(api.runtime.db, wanted, cursor, limit=3)
    assert [r.id for r in first + second] == made[::-1]
    assert end is None
