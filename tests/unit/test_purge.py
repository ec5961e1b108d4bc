"""The purge of lapsed upload tokens and share links, on SQLite and PostgreSQL: what goes, what
stays inside the grace or while an upload the token made may still be sending, and the counts
the purge's summary reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from filegate.db.engine import Database
from filegate.db.repository import ShareLinks, Uploads, UploadTokens
from filegate.domain import (
    ShareLinkRecord,
    UploadGrant,
    UploadRecord,
    UploadState,
    UploadTokenRecord,
    new_id,
    utcnow,
)
from filegate.services import maintenance
from filegate.storage.local import LocalStorage

DAY = timedelta(days=1)
TUS_EXPIRY = 86_400  # the default: shorter than the grace


def add_token(db: Database, expires_at: datetime, revoked_at: datetime | None = None) -> str:
    grant = UploadGrant(
        profile="default", max_size=1024, max_files=1, metadata=(), expires_at=expires_at
    )
    record = UploadTokenRecord(
        id=new_id(),
        tenant="tenant-a",
        key_id=new_id(),
        grant=grant,
        files_created=0,
        created_at=expires_at - timedelta(minutes=15),
        revoked_at=revoked_at,
    )
    with db.session() as session:
        UploadTokens(session).add(record, token_hash=new_id() + new_id())
    return record.id


def add_link(db: Database, expires_at: datetime, revoked_at: datetime | None = None) -> str:
    record = ShareLinkRecord(
        id=new_id(),
        file_id=new_id(),
        tenant="tenant-a",
        key_id="k1",
        disposition="attachment",
        max_downloads=None,
        downloads=0,
        created_at=expires_at - DAY,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )
    with db.session() as session:
        ShareLinks(session).add(record)
    return record.id


def add_receiving_upload(db: Database, token_id: str, expires_at: datetime) -> str:
    now = utcnow()
    record = UploadRecord(
        id=new_id(),
        tenant="tenant-a",
        profile="default",
        length=1000,
        offset=10,
        metadata_header="",
        filename="a.txt",
        filetype=None,
        concat=None,
        parts=(),
        state=UploadState.RECEIVING,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
        uploaded_by=token_id,
    )
    with db.session() as session:
        Uploads(session).add(record)
    return record.id


def purge(db: Database, tmp_path: Path, tus_expiry_seconds: float = TUS_EXPIRY) -> dict[str, int]:
    outcome = maintenance.purge(
        db, LocalStorage(tmp_path / "storage"), 3600, 14, tus_expiry_seconds=tus_expiry_seconds
    )
    # The runner reads schedules' outcomes as name=count pairs (jobs/runner._did_something).
    return {name: int(count) for name, count in (part.split("=") for part in outcome.split())}


def token_exists(db: Database, token_id: str) -> bool:
    with db.session() as session:
        return UploadTokens(session).get(token_id) is not None


def link_exists(db: Database, link_id: str) -> bool:
    with db.session() as session:
        return ShareLinks(session).get(link_id) is not None


def test_tokens_and_links_lapsed_past_the_grace_go_the_rest_stay(
    db: Database, tmp_path: Path
) -> None:
    now = utcnow()
    past_grace = now - maintenance.LAPSED_GRACE - DAY
    inside_grace = now - maintenance.LAPSED_GRACE + DAY
    gone = [
        add_token(db, past_grace),
        add_token(db, past_grace, revoked_at=past_grace - DAY),
    ]
    kept = [
        add_token(db, inside_grace),
        add_token(db, now + DAY),
        # Revoked long ago but still unexpired: counted from its expiry, like the others.
        add_token(db, now + DAY, revoked_at=past_grace),
    ]
    links_gone = [add_link(db, past_grace), add_link(db, past_grace, revoked_at=past_grace)]
    links_kept = [add_link(db, inside_grace), add_link(db, now + DAY, revoked_at=past_grace)]

    counts = purge(db, tmp_path)

    assert (counts["tokens"], counts["share_links"]) == (2, 2)
    assert [token_exists(db, t) for t in gone + kept] == [False] * 2 + [True] * 3
    assert [link_exists(db, x) for x in links_gone + links_kept] == [False] * 2 + [True] * 2
    again = purge(db, tmp_path)
    assert (again["tokens"], again["share_links"]) == (0, 0)


def test_a_token_outlives_every_upload_it_may_still_be_sending(
    db: Database, tmp_path: Path
) -> None:
    now = utcnow()
    expired = now - maintenance.LAPSED_GRACE - DAY
    token = add_token(db, expired)
    # Its last PATCH, just before it expired, renewed the upload for tus_expiry_seconds: with
    # that above the grace the upload is still receiving when the grace has run out.
    tus_expiry = maintenance.LAPSED_GRACE + 3 * DAY
    upload = add_receiving_upload(db, token, expires_at=expired + tus_expiry)

    counts = purge(db, tmp_path, tus_expiry_seconds=tus_expiry.total_seconds())

    assert counts["tokens"] == 0
    assert token_exists(db, token)
    with db.session() as session:
        assert Uploads(session).get(upload) is not None
    # Once tus_expiry_seconds has passed too, nothing the token made can still be sending.
    assert purge(db, tmp_path, tus_expiry_seconds=TUS_EXPIRY)["tokens"] == 1
    assert not token_exists(db, token)


def test_one_run_deletes_a_bounded_number_the_next_carries_on(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "BATCH", 2)
    monkeypatch.setattr(maintenance, "MAX_PER_RUN", 4)
    lapsed = utcnow() - maintenance.LAPSED_GRACE - DAY
    tokens = [add_token(db, lapsed - timedelta(minutes=n)) for n in range(5)]

    assert purge(db, tmp_path)["tokens"] == 4
    # Oldest first: the newest of them is the one left for the next run.
    assert [token_exists(db, t) for t in tokens] == [True] + [False] * 4
    assert purge(db, tmp_path)["tokens"] == 1
    assert purge(db, tmp_path)["tokens"] == 0
