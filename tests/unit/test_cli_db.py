"""`filegate db history` and `filegate db rehearse` through Typer's runner, on SQLite
(tests/contract/test_rehearse.py rehearses on both databases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner, Result

from filegate.cli import app
from filegate.db import migrate, notes
from tests.support.databases import BREAKS_ITS_PROMISE, fill, with_revision

pytestmark = pytest.mark.usefixtures("keep_logging")


@pytest.fixture
def runner(env: dict[str, str]) -> CliRunner:
    return CliRunner(env=env)


@pytest.fixture
def database(env: dict[str, str]) -> str:
    url = env["FILEGATE_DATABASE_URL"]
    migrate.upgrade(url)
    fill(url, 20)
    return url


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def test_history_prints_every_revision_with_its_note(runner: CliRunner) -> None:
    revisions = [r.revision for r in ScriptDirectory(str(migrate.MIGRATIONS_DIR)).walk_revisions()]

    result = run(runner, "db", "history")

    assert result.exit_code == 0, result.output
    heads = [line.split()[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert heads == sorted(revisions)
    for field in notes.FIELDS:
        assert result.stdout.count(f"\n  {field}: ") == len(revisions)


def test_rehearse_prints_a_line_per_step_and_passes(runner: CliRunner, database: str) -> None:
    result = run(runner, "db", "rehearse")

    lines = result.stdout.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[0].startswith("ok   copy the database (sqlite backup) (")
    assert lines[-1].startswith("ok   drop the copy (")
    assert all(line.startswith("ok   ") and line.endswith(" s)") for line in lines)


def test_rehearse_exits_1_on_a_revision_that_breaks_its_promise(
    runner: CliRunner, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", with_revision(tmp_path, BREAKS_ITS_PROMISE))

    result = run(runner, "db", "rehearse")

    assert result.exit_code == 1
    assert "FAIL check 0999 (" in result.stdout
    assert "files had 20 rows, now 19" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("ok   drop the copy")
