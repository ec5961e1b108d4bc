"""`filegate db rehearse` on every database: it passes through every revision and leaves the
source as it was; a revision that breaks its promise, or cannot be undone, fails it, and the
source is still as it was. (tests/contract/test_database_at_scale.py rehearses at scale.)"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from filegate.db import migrate
from filegate.db.engine import make_engine
from filegate.db.rehearse import Step, rehearse
from tests.support.databases import (
    BREAKS_ITS_PROMISE,
    CANNOT_GO_BACK,
    checksum,
    fill,
    with_revision,
)

HEAD = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()
ROWS = 40


@pytest.fixture
def copies_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the rehearsal's SQLite copies go, so a test can see that none is left."""
    directory = tmp_path / "copies"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def failures(steps: list[Step]) -> list[str]:
    return [step.what for step in steps if not step.ok]


def leftover_copies(url: str, copies_dir: Path) -> list[str]:
    if url.startswith("sqlite"):
        return [path.name for path in copies_dir.iterdir()]
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = "SELECT datname FROM pg_database WHERE datname LIKE :pattern"
            name = url.rsplit("/", 1)[1]
            rows = connection.execute(sa.text(query), {"pattern": f"{name}_rehearsal_%"})
            return list(rows.scalars())
    finally:
        engine.dispose()


@pytest.fixture
def at_head(database_url: str) -> str:
    migrate.upgrade(database_url)
    fill(database_url, ROWS)
    return database_url


def test_every_revision_rehearses_from_the_first_and_the_source_stays(
    database_url: str, copies_dir: Path
) -> None:
    migrate.upgrade(database_url, "0001")
    fill(database_url, ROWS)
    before = checksum(database_url)

    steps = list(rehearse(database_url))

    assert failures(steps) == []
    done = [step.what for step in steps]
    assert f"check {HEAD}" in done
    assert "back at 0001: schema and row counts as before" in done
    assert any(what.startswith("plan webhooks_failing (") for what in done)
    assert checksum(database_url) == before
    assert leftover_copies(database_url, copies_dir) == []


def test_a_revision_that_breaks_its_promise_fails_and_the_source_stays(
    at_head: str, tmp_path: Path, copies_dir: Path
) -> None:
    before = checksum(at_head)

    steps = list(rehearse(at_head, scripts=with_revision(tmp_path, BREAKS_ITS_PROMISE)))

    assert failures(steps) == ["check 0999", f"back at {HEAD}: schema and row counts as before"]
    assert steps[1].what == "upgrade 0999"
    assert steps[2].problems == (f"files had {ROWS} rows, now {ROWS - ROWS // 20}",)
    assert checksum(at_head) == before
    assert leftover_copies(at_head, copies_dir) == []


def test_a_downgrade_that_fails_stops_the_rehearsal_and_the_source_stays(
    at_head: str, tmp_path: Path, copies_dir: Path
) -> None:
    before = checksum(at_head)

    steps = list(rehearse(at_head, scripts=with_revision(tmp_path, CANNOT_GO_BACK)))

    assert failures(steps) == ["downgrade 0999"]
    assert [step.what for step in steps][-2:] == ["downgrade 0999", "drop the copy"]
    assert checksum(at_head) == before
    assert leftover_copies(at_head, copies_dir) == []


def test_a_revision_behind_the_database_is_refused(at_head: str) -> None:
    steps = list(rehearse(at_head, "0003"))

    assert failures(steps) == [f"find the revisions from {HEAD} to 0003"]
    assert steps[-1].what == "drop the copy"


@pytest.mark.postgres
def test_postgres_is_copied_with_pg_dump_while_others_are_connected(
    fresh_postgres: str,
) -> None:
    migrate.upgrade(fresh_postgres, "0007")
    fill(fresh_postgres, ROWS)
    before = checksum(fresh_postgres)

    with connected(fresh_postgres):
        steps = list(rehearse(fresh_postgres))

    assert failures(steps) == []
    assert steps[0].what == "copy the database (pg_dump | pg_restore)"
    assert "analyze the copy" in [step.what for step in steps]
    assert checksum(fresh_postgres) == before


@pytest.mark.postgres
def test_postgres_without_other_sessions_is_copied_as_a_template(fresh_postgres: str) -> None:
    migrate.upgrade(fresh_postgres)

    steps = list(rehearse(fresh_postgres))

    assert steps[0].what == "copy the database (CREATE DATABASE ... TEMPLATE)"
    assert failures(steps) == []


@contextmanager
def connected(url: str) -> Iterator[None]:
    """Another session on the database, as a running application would hold."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            yield
    finally:
        engine.dispose()
