"""The command line through Typer's runner, and once as a real `python -m filegate` process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner, Result

from filegate import __version__
from filegate.cli import app
from filegate.cli.upload import UploadResult, _summary
from filegate.client.models import Upload
from filegate.db import migrate
from filegate.db.engine import Database, make_engine
from filegate.domain import Scope
from filegate.errors import ErrorCode, FilegateError
from filegate.services.keys import authenticate, create_key, hash_key, list_keys
from tests.support.samples import HTML, png

pytestmark = pytest.mark.usefixtures("keep_logging")

KEY_LINE = re.compile(r"^fgk_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def runner(env: dict[str, str]) -> CliRunner:
    # Click 8.2+ always keeps stdout and stderr apart; `output` is both, interleaved.
    return CliRunner(env=env)


@pytest.fixture
def database(env: dict[str, str]) -> Iterator[Database]:
    url = env["FILEGATE_DATABASE_URL"]
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def test_migrate_creates_the_schema(runner: CliRunner, env: dict[str, str]) -> None:
    result = run(runner, "migrate")

    assert result.exit_code == 0, result.output
    assert result.stdout == "", "progress goes to stderr, so stdout stays scriptable"
    assert "database is up to date" in result.stderr
    engine = make_engine(env["FILEGATE_DATABASE_URL"])
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "api_keys", "files"} <= tables


def test_keys_create_prints_the_key_alone_on_the_last_line(
    runner: CliRunner, database: Database
) -> None:
    result = run(runner, "keys", "create", "--tenant", "t1", "--scopes", "upload,read")

    assert result.exit_code == 0, result.output
    raw = result.stdout.splitlines()[-1]
    assert KEY_LINE.match(raw), result.stdout
    principal = authenticate(database, raw)
    assert principal.tenant == "t1"
    assert principal.scopes == {Scope.UPLOAD, Scope.READ}


def test_keys_create_refuses_an_unknown_scope(runner: CliRunner, database: Database) -> None:
    result = run(runner, "keys", "create", "--tenant", "t1", "--scopes", "upload,root")

    assert result.exit_code == 1
    assert "Unknown scope 'root'" in result.stderr
    assert "fgk_" not in result.output
    assert list_keys(database) == []


@pytest.mark.parametrize("tenant", ["Tenant", "has space", "", "-dash-first", "x" * 65])
def test_keys_create_refuses_a_bad_tenant(
    runner: CliRunner, database: Database, tenant: str
) -> None:
    result = run(runner, "keys", "create", "--tenant", tenant, "--scopes", "read")

    assert result.exit_code == 1
    assert "Tenant names are" in result.stderr
    assert list_keys(database) == []


def test_keys_list_prints_json_lines_without_secrets(runner: CliRunner, database: Database) -> None:
    raws = [
        run(runner, "keys", "create", "--tenant", tenant, "--scopes", "read").stdout.splitlines()[
            -1
        ]
        for tenant in ("t1", "t2")
    ]

    result = run(runner, "keys", "list")

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(line["tenant"] for line in lines) == ["t1", "t2"]
    assert all(line["scopes"] == ["read"] and line["revoked_at"] is None for line in lines)
    for raw in raws:
        assert raw not in result.output
        assert hash_key(raw) not in result.output


def test_keys_revoke_stops_the_key(runner: CliRunner, database: Database) -> None:
    record, raw = create_key(database, tenant="t1", scopes=frozenset({Scope.READ}))

    result = run(runner, "keys", "revoke", record.id)

    assert result.exit_code == 0, result.output
    with pytest.raises(FilegateError) as caught:
        authenticate(database, raw)
    assert caught.value.code is ErrorCode.UNAUTHENTICATED


def test_revoking_an_unknown_key_fails(runner: CliRunner, database: Database) -> None:
    result = run(runner, "keys", "revoke", "01ARZ3NDEKTSV4RRFFQ69G5FAV")

    assert result.exit_code == 1
    assert "No active key" in result.stderr


def inspect_lines(result: Result) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_inspect_passes_a_clean_png(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "pixel.png").write_bytes(png())

    result = run(runner, "inspect", "pixel.png")

    assert result.exit_code == 0, result.output
    [line] = inspect_lines(result)
    assert line["state"] == "clean"
    assert line["detected_type"] == "image/png"


def test_inspect_rejects_html_named_png(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(HTML)

    result = run(runner, "inspect", "x.png")

    assert result.exit_code == 1
    [line] = inspect_lines(result)
    assert line["state"] == "rejected"
    assert "type_mismatch" in {f["code"] for f in line["findings"]}  # type: ignore[attr-defined]


def test_inspect_fails_on_a_missing_path(runner: CliRunner) -> None:
    result = run(runner, "inspect", "nowhere.png")

    assert result.exit_code == 1
    [line] = inspect_lines(result)
    assert line == {"path": "nowhere.png", "error": "not a readable file"}


def test_version_prints_the_package_version(runner: CliRunner) -> None:
    result = run(runner, "--version")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == __version__


def test_python_m_filegate_runs_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "pixel.png").write_bytes(png())
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}

    done = subprocess.run(
        [sys.executable, "-m", "filegate", "inspect", "pixel.png"],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "clean"


@pytest.mark.parametrize("command", [["keys", "list"], ["serve"], ["worker"]])
def test_commands_refuse_an_unmigrated_database(runner: CliRunner, command: list[str]) -> None:
    result = run(runner, *command)

    assert result.exit_code == 1
    assert "run `filegate migrate`" in result.stderr
    assert "Traceback" not in result.output


def test_logs_are_json_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}
    env["FILEGATE_DATA_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "-m", "filegate", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    logged = [line for line in result.stderr.splitlines() if line != "database is up to date"]
    assert logged, result.stderr
    for line in logged:
        assert json.loads(line)["level"] == "info"


def test_make_run_installs_no_development_tools() -> None:
    root = Path(__file__).parents[2]
    recipe = (root / "Makefile").read_text().split("$(VENV)/.synced-run:", 1)[1].split("\n\n")[0]
    assert "--no-dev" in recipe
    exported = subprocess.run(
        [str(root / ".venv" / "bin" / "uv"), "export", "--frozen", "--no-dev", "--all-extras"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    installed = {line.split("==")[0].strip() for line in exported.splitlines() if "==" in line}
    assert "fastapi" in installed
    for tool in ("pytest", "mypy", "ruff", "matplotlib", "hypothesis", "schemathesis", "py-spy"):
        assert tool not in installed, tool


def test_upload_summary_never_cuts_an_id_in_a_narrow_terminal(tmp_path: Path) -> None:
    """In 80 columns (a pipe) the path wraps and stays whole; the id the next command needs
    is never cut to an ellipsis."""
    path = tmp_path / "a" / "rather" / "deep" / "folder" / "of" / "holiday-photos-2026.jpeg"
    file_id = "01M97MT8TVA4G41T5XMGZ34GT4"
    upload = Upload(file_id=file_id, url="", name=path.name, size=1, sha256="0" * 64)
    console = Console(width=80, record=True)
    console.print(_summary([UploadResult(path, upload=upload)], waited=False))
    text = console.export_text()
    assert file_id in text
    assert "holiday-photos-2026.jpeg" in text.replace("\n", "").replace("│", "").replace(" ", "")
    assert "…" not in text
