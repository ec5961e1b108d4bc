"""Migrations on every database: they round-trip, match the models, and say who owns them."""

from __future__ import annotations

import ast
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from filegate.db import migrate
from filegate.db.engine import make_engine
from filegate.db.models import Base
from filegate.domain import new_id

VERSIONS = migrate.MIGRATIONS_DIR / "versions"
TEMPLATE = migrate.MIGRATIONS_DIR / "script.py.mako"
REQUIRED_FIELDS = ("Owner:", "Expected result:", "Rollback:")
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


def test_migrations_match_the_models(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            drift = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()

    assert drift == [], f"the models and the migrations disagree; write a migration for: {drift}"


def docstring_problems(docstring: str) -> list[str]:
    """The required fields that are missing, empty or still the template's ``<placeholder>``."""
    lines = [line.strip() for line in docstring.splitlines()]
    problems = []
    for field in REQUIRED_FIELDS:
        values = [line.removeprefix(field).strip() for line in lines if line.startswith(field)]
        if not values or not values[0] or values[0].startswith("<"):
            problems.append(f"{field} needs real text")
    return problems


def test_every_migration_says_who_owns_it_and_how_to_roll_back() -> None:
    files = sorted(VERSIONS.glob("*.py"))
    assert files, f"no migrations found in {VERSIONS}"
    problems = {
        path.name: docstring_problems(ast.get_docstring(ast.parse(path.read_text())) or "")
        for path in files
    }

    assert not any(problems.values()), {name: found for name, found in problems.items() if found}


def test_the_docstring_check_rejects_the_templates_placeholders() -> None:
    template_docstring = TEMPLATE.read_text().split('"""')[1]

    assert docstring_problems(template_docstring) == [
        f"{field} needs real text" for field in REQUIRED_FIELDS
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
