"""Run Alembic migrations from code, so ``filegate migrate`` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from filegate.db.engine import make_engine, normalise_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str, scripts: Path | None = None) -> Config:
    """Alembic's configuration for ``database_url``; ``scripts`` replaces the migrations
    directory (the tests rehearse deliberately broken revisions)."""
    config = Config()
    config.set_main_option("script_location", str(scripts or MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, scripts: Path | None = None) -> None:
    command.upgrade(alembic_config(database_url, scripts), revision)


def downgrade(database_url: str, revision: str, *, scripts: Path | None = None) -> None:
    command.downgrade(alembic_config(database_url, scripts), revision)


def is_current(database_url: str) -> bool:
    """True when the database schema is at the newest migration."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return set(current) == set(script.get_heads())
