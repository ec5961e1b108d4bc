"""Migrations checked before they run: the models and the migrations agree (`alembic check`),
and squawk finds nothing dangerous in the PostgreSQL SQL of any revision
(`alembic upgrade A:B --sql`, offline) that is not exempted below, each with its reason."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory

from filegate.db import migrate

# The binary the squawk-cli wheel installs beside this Python.
SQUAWK = shutil.which("squawk", path=str(Path(sys.executable).parent))
# The server version the SQL is judged for: the oldest filegate supports.
PG_VERSION = "15"

# Rules that do not fit filegate, for every revision.
RULES_OFF = {
    "prefer-text-field": "every string column is bounded on purpose (varchar(n) refuses what "
    "the application never writes); widening a varchar is a catalogue change on PostgreSQL "
    "(0005: 0.02 s on 200,000 jobs)",
    "prefer-bigint-over-int": "the integer columns count attempts and downloads, or hold HTTP "
    "statuses and pids: nowhere near 2**31",
    "require-statement-timeout": "a data migration may rightly take minutes on a large table; "
    "env.py bounds lock waits (lock_timeout) and `filegate db rehearse` measures the time "
    "(each note's Expected duration) instead",
}
# Dangerous operations in particular revisions, each accepted for the reason given.
EXEMPTIONS = {
    ("0005", "changing-column-type"): "widens jobs.outcome from varchar(64) to varchar(255): "
    "PostgreSQL changes the catalogue only, no rewrite (0.02 s on 200,000 jobs)",
    ("0008", "prefer-robust-stmts"): "CREATE INDEX CONCURRENTLY without IF NOT EXISTS: IF NOT "
    "EXISTS would pass over an INVALID index a failed build left behind; the note says to drop "
    "it and run again, and the rehearsal's check reports invalid indexes",
    ("0011", "prefer-robust-stmts"): "as 0008: CREATE INDEX CONCURRENTLY without IF NOT "
    "EXISTS, so a failed build's INVALID index is reported, not passed over",
}


def revisions() -> list[str]:
    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def upgrade_sql(revision: str) -> str:
    """The SQL ``revision``'s upgrade runs on PostgreSQL, generated offline (no server)."""
    down = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_revision(revision).down_revision
    config = migrate.alembic_config("postgresql+psycopg://offline/filegate")
    config.output_buffer = io.StringIO()
    command.upgrade(config, f"{down or 'base'}:{revision}", sql=True)
    return config.output_buffer.getvalue()


def squawk(sql_dir: Path) -> list[tuple[str, str, str]]:
    """(revision, rule, message) for every warning squawk has on the files in ``sql_dir``."""
    assert SQUAWK is not None, "squawk is a dev dependency (squawk-cli): run `make install`"
    found = subprocess.run(
        [SQUAWK, f"--pg-version={PG_VERSION}", "--reporter=json", *sorted(sql_dir.glob("*.sql"))],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert found.returncode in (0, 1), found.stderr
    return [(Path(w["file"]).stem, w["rule_name"], w["message"]) for w in json.loads(found.stdout)]


def test_alembic_check_finds_no_drift_between_models_and_migrations(database_url: str) -> None:
    migrate.upgrade(database_url)

    command.check(migrate.alembic_config(database_url))


@pytest.fixture(scope="module")
def warnings(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    sql_dir = tmp_path_factory.mktemp("sql")
    for revision in revisions():
        (sql_dir / f"{revision}.sql").write_text(upgrade_sql(revision))
    return squawk(sql_dir)


def test_squawk_finds_nothing_unexempted_in_any_revision(
    warnings: list[tuple[str, str, str]],
) -> None:
    unexempted = [
        f"{revision}: {rule}: {message}"
        for revision, rule, message in warnings
        if rule not in RULES_OFF and (revision, rule) not in EXEMPTIONS
    ]

    assert unexempted == [], "fix the revision, or exempt it in EXEMPTIONS with the reason"


def test_every_exemption_is_still_needed(warnings: list[tuple[str, str, str]]) -> None:
    seen = {(revision, rule) for revision, rule, _ in warnings}

    assert set(EXEMPTIONS) - seen == set()
    assert set(RULES_OFF) - {rule for _, rule in seen} == set()


def test_squawk_catches_an_index_built_without_concurrently(tmp_path: Path) -> None:
    (tmp_path / "0099.sql").write_text(
        "SET lock_timeout = '10s';\nCREATE INDEX ix_files_size ON files (size);\n"
    )

    assert "require-concurrent-index-creation" in {rule for _, rule, _ in squawk(tmp_path)}
