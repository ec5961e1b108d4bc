"""Migrations and hot queries at production scale, on SQLite and PostgreSQL: 200,000 rows in
each large table of a database grown revision by revision, as a real one was.

One grown database per backend serves every test here (module scope): the newest revision is
rehearsed on a copy of it, then it is upgraded to the head and the hot queries are planned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alembic.script import ScriptDirectory

from filegate.db import migrate
from filegate.db.engine import make_engine
from filegate.db.hot_queries import HOT_QUERIES, HotQuery, Sample
from filegate.db.invariants import row_counts
from filegate.db.plans import explain, full_scans_of_large, large_tables, median_ms
from filegate.db.rehearse import Step, rehearse
from tests.conftest import DB_BACKENDS
from tests.support import database_doc
from tests.support.databases import LARGE_TABLES, checksum, grow, scratch_postgres

ROWS = 200_000
SCRIPTS = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
HEAD = SCRIPTS.get_revision("head")
assert HEAD is not None
# Grown to here, so that the newest revision runs at scale in the rehearsal.
BEFORE_HEAD = HEAD.down_revision
assert isinstance(BEFORE_HEAD, str), "the newest revision must follow exactly one"


@dataclass
class Grown:
    backend: str
    url: str
    upgrade_seconds: dict[str, float]


@dataclass
class Rehearsal:
    steps: list[Step]
    before: str
    after: str


@pytest.fixture(scope="module", params=DB_BACKENDS)
def grown(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Grown]:
    """A database at the revision before the head, grown and filled with ``ROWS`` per table."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('scale') / 'filegate.db'}"
        yield Grown("sqlite", url, grow(url, BEFORE_HEAD, ROWS))
        return
    with scratch_postgres(request.getfixturevalue("postgres_server")) as url:
        yield Grown("postgresql", url, grow(url, BEFORE_HEAD, ROWS))


@pytest.fixture(scope="module")
def rehearsed(grown: Grown) -> Rehearsal:
    before = checksum(grown.url)
    steps = list(rehearse(grown.url))
    return Rehearsal(steps, before, checksum(grown.url))


@pytest.fixture(scope="module")
def at_head(grown: Grown, rehearsed: Rehearsal) -> str:
    """The same database upgraded to the head, after the rehearsal has read it (the tables'
    statistics are the grown database's: a new plain index needs none)."""
    migrate.upgrade(grown.url)
    return grown.url


def test_the_newest_revision_rehearses_at_scale_without_touching_the_source(
    rehearsed: Rehearsal,
) -> None:
    failed = [step for step in rehearsed.steps if not step.ok]
    done = [step.what for step in rehearsed.steps]
    newest = HEAD.revision

    assert failed == []
    assert {f"upgrade {newest}", f"check {newest}", f"upgrade again {newest}"} <= set(done)
    assert done[-1] == "drop the copy"
    assert rehearsed.after == rehearsed.before


def test_every_large_table_holds_the_rows(at_head: str) -> None:
    engine = make_engine(at_head)
    try:
        with engine.connect() as connection:
            counts, large = row_counts(connection), large_tables(connection)
    finally:
        engine.dispose()

    assert large == set(LARGE_TABLES)
    assert all(counts[table] >= ROWS for table in LARGE_TABLES), counts


@pytest.mark.parametrize("query", HOT_QUERIES, ids=lambda q: q.name)
def test_no_hot_query_reads_a_large_table_in_full(at_head: str, query: HotQuery) -> None:
    engine = make_engine(at_head)
    try:
        with engine.connect() as connection:
            plan = explain(connection, query.build(Sample.of(connection)))
    finally:
        engine.dispose()

    assert full_scans_of_large(plan, set(LARGE_TABLES)) == [], plan.lines


def test_docs_database_md_shows_each_plan_and_duration(
    grown: Grown, rehearsed: Rehearsal, at_head: str
) -> None:
    text = database_doc.DOC.read_text()
    if database_doc.writing():
        text = _write(text, grown, rehearsed, at_head)
        database_doc.DOC.write_text(text)
    plans = database_doc.section(text, f"plans-{grown.backend}")
    durations = database_doc.section(text, f"durations-{grown.backend}")

    assert [q.name for q in HOT_QUERIES if f"\n{q.name} " not in plans] == []
    assert [r for r in grown.upgrade_seconds if f"| {r} |" not in durations] == []
    assert f"| {HEAD.revision} |" in durations


def _write(text: str, grown: Grown, rehearsed: Rehearsal, url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            rows, sample = row_counts(connection), Sample.of(connection)
            measured = []
            for query in HOT_QUERIES:
                statement = query.build(sample)
                measured.append(
                    (query, explain(connection, statement), median_ms(connection, statement))
                )
    finally:
        engine.dispose()
    steps = {
        step.what.removeprefix("upgrade "): step.seconds
        for step in rehearsed.steps
        if step.what.startswith(("upgrade 0", "downgrade "))
    }
    text = database_doc.replace(
        text, f"plans-{grown.backend}", database_doc.plans_section(rows, measured)
    )
    durations = database_doc.durations_section(rows, grown.upgrade_seconds, steps)
    return database_doc.replace(text, f"durations-{grown.backend}", durations)
