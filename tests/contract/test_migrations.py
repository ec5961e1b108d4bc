"""Migrations on every database: they round-trip, keep rows, and carry their note and their
expected result as code (test_migration_lint.py checks them against the models)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from filegate.db import migrate, notes
from filegate.db.engine import make_engine
from filegate.db.models import Base
from filegate.domain import new_id

VERSIONS = migrate.MIGRATIONS_DIR / "versions"
TEMPLATE = migrate.MIGRATIONS_DIR / "script.py.mako"
MODEL_TABLES = set(Base.metadata.tables)


def head() -> str | None:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


def schema(url: str) -> tuple[str | None, set[str]]:
    """The current revision and the tables other than Alembic's own."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
        tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    return revision, tables


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert schema(database_url) == (head(), MODEL_TABLES)

    migrate.downgrade(database_url, "base")
    assert schema(database_url) == (None, set())

    migrate.upgrade(database_url)
    assert schema(database_url) == (head(), MODEL_TABLES)


def test_the_schema_check_knows_the_heads_without_alembic(database_url: str) -> None:
    """``filegate serve`` checks the schema without importing Alembic: its heads are Alembic's,
    and the check says current only at the head."""
    assert migrate.heads() == set(
        ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_heads()
    )
    assert not migrate.is_current(database_url)  # no alembic_version table yet
    migrate.upgrade(database_url)
    assert migrate.is_current(database_url)
    migrate.downgrade(database_url, "-1")
    assert not migrate.is_current(database_url)


def test_a_script_the_schema_check_cannot_read_is_refused(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    (tmp_path / "versions" / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "versions" / "0002_b.py").write_text('revision = "0002"\ndown_revision = "0001"\n')
    assert migrate.heads(tmp_path) == {"0002"}
    merge = 'revision = "0003"\ndown_revision = ("0001", "0002")\n'
    (tmp_path / "versions" / "0003_merge.py").write_text(merge)
    with pytest.raises(ValueError, match=r"0003_merge\.py"):
        migrate.heads(tmp_path)


def revisions() -> list[Script]:
    return list(ScriptDirectory(str(migrate.MIGRATIONS_DIR)).walk_revisions())


def test_every_migration_carries_its_note() -> None:
    found = revisions()
    assert found, f"no migrations found in {VERSIONS}"
    problems = {rev.revision: notes.problems_of(rev.module.__doc__ or "") for rev in found}

    assert not any(problems.values()), {rev: found for rev, found in problems.items() if found}


def test_every_migration_codes_its_expected_result() -> None:
    missing = [
        rev.revision for rev in revisions() if not callable(getattr(rev.module, "expected", None))
    ]

    assert missing == [], "define expected(probe) -> list[str] in these (see 0001)"


def test_the_note_check_names_each_missing_field() -> None:
    incomplete = """Add a column.

    Revision ID: 0099
    Revises: 0098

    Owner: someone
    Expected result: a new column,
    NULL on every row.
    Expected duration: fast
    """

    assert notes.problems_of(incomplete) == [
        "Rollback: needs real text",
        "Expected duration: say on how many rows (`... on 200,000 rows`)",
    ]
    assert notes.fields_of(incomplete)["Expected result"] == "a new column, NULL on every row."
    assert notes.title_of(incomplete) == "Add a column."


def test_the_note_check_rejects_the_templates_placeholders() -> None:
    template_docstring = TEMPLATE.read_text().split('"""')[1]

    assert notes.problems_of(template_docstring) == [
        f"{field}: needs real text" for field in notes.FIELDS
    ]


def test_upgrading_at_head_keeps_existing_rows(database_url: str) -> None:
    migrate.upgrade(database_url)
    now = datetime.now(UTC)
    key = {
        "id": new_id(),
        "tenant": "t1",
        "name": "ci",
        "prefix": "fgk_abcdef",
        "key_hash": "0" * 64,
        "scopes": "read,upload",
        "created_at": now,
        "revoked_at": None,
    }
    file = {
        "id": new_id(),
        "tenant": "t1",
        "original_name": "photo.png",
        "display_name": "photo.png",
        "size": 67,
        "sha256": "f" * 64,
        "declared_type": "image/png",
        "detected_type": "image/png",
        "profile": "default",
        "state": "clean",
        "findings": [{"code": "name_changed", "message": "renamed"}],
        "created_at": now,
        "updated_at": now,
        "inspected_at": now,
        "verdict": None,
        "received_sha256": "f" * 64,
        "received_size": 67,
        "sanitized": None,
        "uploaded_by": None,
    }
    api_keys, files = Base.metadata.tables["api_keys"], Base.metadata.tables["files"]
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(api_keys.insert().values(key))
            connection.execute(files.insert().values(file))

        migrate.upgrade(database_url)

        with engine.connect() as connection:
            key_rows = [row._asdict() for row in connection.execute(sa.select(api_keys))]
            file_rows = [row._asdict() for row in connection.execute(sa.select(files))]
    finally:
        engine.dispose()
    assert key_rows == [key]
    assert file_rows == [file]
    assert schema(database_url)[0] == head()
