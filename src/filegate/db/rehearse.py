"""Rehearse the pending migrations on a copy of the real database, never on the database:
upgrade revision by revision, checking each one's ``expected()``; downgrade back to where
the database was and compare; upgrade again; then plan the hot queries on the result.

``rehearse`` yields one ``Step`` at a time, so a caller can show progress as it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RangeNotAncestorError, RevisionError
from alembic.util.exc import CommandError

from filegate.db import migrate
from filegate.db.copies import Copy, CopyError, copied
from filegate.db.engine import make_engine
from filegate.db.hot_queries import HOT_QUERIES, HotQuery, Sample
from filegate.db.invariants import Probe, row_counts, schema_of
from filegate.db.plans import explain, full_scans_of_large, large_tables, median_ms


@dataclass(frozen=True, slots=True)
class Step:
    ok: bool
    what: str
    seconds: float
    problems: tuple[str, ...] = ()


def rehearse(url: str, revision: str = "head", *, scripts: Path | None = None) -> Iterator[Step]:
    """The steps of a rehearsal of the database at ``url`` up to ``revision``; the copy is
    dropped however the rehearsal ends."""
    started = time.monotonic()
    try:
        with copied(url) as copy:
            yield Step(True, f"copy the database ({copy.how})", time.monotonic() - started)
            yield from _on_copy(copy, revision, scripts)
    except CopyError as exc:
        yield Step(False, "copy the database", time.monotonic() - started, (str(exc),))
        return
    problems = (copy.drop_problem,) if copy.drop_problem else ()
    yield Step(not problems, "drop the copy", copy.drop_seconds, problems)


def _on_copy(copy: Copy, revision: str, scripts: Path | None) -> Iterator[Step]:
    url = copy.url
    script = ScriptDirectory.from_config(migrate.alembic_config(url, scripts))
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            start = MigrationContext.configure(connection).get_current_revision()
        what = f"find the revisions from {start or 'base'} to {revision}"
        try:
            path = _path(script, start, revision)
        except RangeNotAncestorError:
            yield Step(False, what, 0.0, (f"{revision} is behind the database: it only goes up",))
            return
        except (CommandError, RevisionError) as exc:
            yield Step(False, what, 0.0, (str(exc),))
            return
        if not path:
            yield Step(True, f"nothing to apply: the database is at {start or 'base'}", 0.0)
        elif not (yield from _Migrations(engine, url, scripts, path, start).run()):
            return
        at = path[-1].revision if path else start
        if at is not None and at in script.get_heads():
            # The hot queries are today's code: they plan only at the head.
            yield from _plans(engine, analyze=not copy.statistics)
    finally:
        engine.dispose()


def _path(script: ScriptDirectory, start: str | None, revision: str) -> list[Script]:
    """The revisions to apply from ``start`` to ``revision``, oldest first."""
    target = script.get_revision(revision)
    if target is None or target.revision == start:
        return []
    revisions = script.iterate_revisions(target.revision, start or "base")
    return [r for r in reversed(list(revisions)) if r is not None]


@dataclass
class _Migrations:
    """Up through ``path`` with checks, down to ``start`` and compared, up again."""

    engine: sa.Engine
    url: str
    scripts: Path | None
    path: list[Script]
    start: str | None

    def run(self) -> Generator[Step, None, bool]:
        """The steps; False once one failed that the next ones cannot follow."""
        with self.engine.connect() as connection:
            before = schema_of(connection), row_counts(connection)
        return (
            (yield from self._up("upgrade"))
            and (yield from self._down(before))
            and (yield from self._up("upgrade again"))
        )

    def _up(self, word: str) -> Generator[Step, None, bool]:
        for rev in self.path:
            with self.engine.connect() as connection:
                rows_before = row_counts(connection)
            with _timed(f"{word} {rev.revision}") as step:
                migrate.upgrade(self.url, rev.revision, scripts=self.scripts)
            yield step.result
            if not step.result.ok:
                return False
            with _timed(f"check {rev.revision}") as step, self.engine.connect() as connection:
                step.problems = _expected(rev, Probe(connection, rows_before))
            yield step.result
        return True

    def _down(self, before: tuple[dict[str, Any], dict[str, int]]) -> Generator[Step, None, bool]:
        for rev in reversed(self.path):
            with _timed(f"downgrade {rev.revision}") as step:
                migrate.downgrade(self.url, _down_revision(rev), scripts=self.scripts)
            yield step.result
            if not step.result.ok:
                return False
        what = f"back at {self.start or 'base'}: schema and row counts as before"
        with _timed(what) as step, self.engine.connect() as connection:
            step.problems = _differences(before, (schema_of(connection), row_counts(connection)))
        yield step.result
        return True


def _plans(engine: sa.Engine, *, analyze: bool) -> Iterator[Step]:
    if analyze:
        # A restored dump has no planner statistics; without them every plan is a guess.
        started = time.monotonic()
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        yield Step(True, "analyze the copy", time.monotonic() - started)
    with engine.connect() as connection:
        large, sample = large_tables(connection), Sample.of(connection)
        for query in HOT_QUERIES:
            yield _plan_step(connection, query, sample, large)


def _plan_step(connection: sa.Connection, query: HotQuery, sample: Sample, large: set[str]) -> Step:
    started = time.monotonic()
    statement = query.build(sample)
    plan = explain(connection, statement)
    milliseconds = median_ms(connection, statement)
    full = full_scans_of_large(plan, large)
    problems = tuple(f"reads all of {table}, a large table" for table in full)
    what = f"plan {query.name} ({milliseconds:.1f} ms): {plan.summary()}"
    return Step(not problems, what, time.monotonic() - started, problems)


def _expected(rev: Script, probe: Probe) -> list[str]:
    expected: Callable[[Probe], list[str]] | None = getattr(rev.module, "expected", None)
    if expected is None:
        return [f"revision {rev.revision} defines no expected(probe)"]
    return expected(probe)


def _down_revision(rev: Script) -> str:
    down = rev.down_revision
    if isinstance(down, str):
        return down
    if down:
        raise CommandError(f"revision {rev.revision} merges branches; rehearse one at a time")
    return "base"


def _differences(
    before: tuple[dict[str, Any], dict[str, int]], after: tuple[dict[str, Any], dict[str, int]]
) -> list[str]:
    (schema_before, rows_before), (schema_after, rows_after) = before, after
    problems = [
        f"table {table}: {schema_before.get(table)} became {schema_after.get(table)}"
        for table in sorted(set(schema_before) | set(schema_after))
        if schema_before.get(table) != schema_after.get(table)
    ]
    problems += [
        f"{table} had {count} rows, now {rows_after.get(table)}"
        for table, count in rows_before.items()
        if rows_after.get(table) != count
    ]
    return problems


class _Timing:
    def __init__(self, what: str) -> None:
        self.problems: list[str] = []
        self.result = Step(False, what, 0.0)


@contextmanager
def _timed(what: str) -> Iterator[_Timing]:
    """Time a step; an exception from it becomes the step's problem, not the rehearsal's end."""
    timing = _Timing(what)
    started = time.monotonic()
    try:
        yield timing
    except Exception as exc:
        # The first line: a database error goes on with its SQL and a link.
        timing.problems.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
    seconds = time.monotonic() - started
    timing.result = Step(not timing.problems, what, seconds, tuple(timing.problems))
