"""What the review tests share (test_review.py, test_admin_console.py): their settings, an admin
key, and files already decided, put in place without running an inspection."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from filegate.config import Settings, builtin_profiles, load_settings
from filegate.db import migrate
from filegate.db.repository import Files
from filegate.domain import (
    ApiKeyRecord,
    Area,
    FileRecord,
    FileState,
    Finding,
    Scope,
    new_id,
    utcnow,
)
from filegate.services.keys import create_key
from tests.conftest import Api
from tests.support.services import without_filegate_env

TEXT = b"".join(b"line %d of a note under review\n" % i for i in range(20))
OVERRIDABLE = ["empty_file", "type_not_allowed"]

EMPTY = Finding("empty_file", "the file is empty")
MALWARE = Finding("malware_found", "ClamAV found Eicar-Signature")
SCRIPT = Finding("script", "a shell script")


def review_settings(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A migrated database and the built-in profiles, the default one letting reviewers
    override two findings; nothing from the caller's environment."""
    without_filegate_env(monkeypatch, tmp_path)
    migrate.upgrade(database_url)
    profiles = builtin_profiles()
    profiles["default"] = profiles["default"].model_copy(update={"overridable": OVERRIDABLE})
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, profiles=profiles)


def new_admin_key(api: Api, name: str) -> tuple[ApiKeyRecord, str]:
    """A new key of tenant-a with the admin scope: the record, and the raw key to sign in with."""
    return create_key(api.runtime.db, tenant="tenant-a", scopes=frozenset({Scope.ADMIN}), name=name)


def stored(
    api: Api,
    state: FileState,
    findings: tuple[Finding, ...] = (),
    *,
    data: bytes = TEXT,
    tenant: str = "tenant-a",
    detected_type: str = "text/plain",
) -> FileRecord:
    """A decided file as promotion leaves it: clean bytes in clean, rejected in quarantine."""
    now = utcnow()
    digest = hashlib.sha256(data).hexdigest()
    record = FileRecord(
        id=new_id(),
        tenant=tenant,
        original_name="note.txt",
        display_name="note.txt",
        size=len(data),
        sha256=digest,
        declared_type="text/plain",
        detected_type=detected_type,
        profile="default",
        state=state,
        findings=findings,
        created_at=now,
        updated_at=now,
        inspected_at=now,
    )
    area = Area.CLEAN if state is FileState.CLEAN else Area.QUARANTINE
    writer = api.runtime.storage.writer(area, record.id)
    writer.write(data)
    writer.commit()
    with api.runtime.db.session() as session:
        Files(session).add(record)
    added = current(api, record.id)
    assert added is not None
    return added


def current(api: Api, file_id: str) -> FileRecord | None:
    with api.runtime.db.session() as session:
        return Files(session).get(file_id)
