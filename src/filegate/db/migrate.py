"""Run Alembic migrations from code, so ``filegate migrate`` needs no alembic.ini.

Alembic (and Mako, which it brings) loads only for the commands that migrate: ``filegate serve``
and ``filegate worker`` check the schema with one query and the revision lines of the scripts,
and keep the 7 MB that importing Alembic costs out of every long-running process (issue #20).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from filegate.db.engine import make_engine, normalise_url
from filegate.db.invariants import ALEMBIC_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# How every script names itself and its parent: `revision = "0011"`, `down_revision = "0010"`.
_REVISION_LINE = re.compile(r'^(revision|down_revision)\s*=\s*(?:"([^"]+)"|None)\s*$', re.M)


def alembic_config(database_url: str, scripts: Path | None = None) -> Config:
    """Alembic's configuration for ``database_url``; ``scripts`` replaces the migrations
    directory (the tests rehearse deliberately broken revisions)."""
    from alembic.config import Config  # noqa: PLC0415 - only the commands that migrate

    config = Config()
    config.set_main_option("script_location", str(scripts or MIGRATIONS_DIR))
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", normalise_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, scripts: Path | None = None) -> None:
    from alembic import command  # noqa: PLC0415 - only the commands that migrate

    command.upgrade(alembic_config(database_url, scripts), revision)


def downgrade(database_url: str, revision: str, *, scripts: Path | None = None) -> None:
    from alembic import command  # noqa: PLC0415 - only the commands that migrate

    command.downgrade(alembic_config(database_url, scripts), revision)


def heads(scripts: Path = MIGRATIONS_DIR) -> set[str]:
    """The newest revisions: those no script names as its parent (Alembic's heads; a test
    checks that they agree)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (scripts / "versions").glob("*.py"):
        lines = dict(_REVISION_LINE.findall(path.read_text()))
        # A merge's tuple of parents would be skipped silently: refuse it until it is needed.
        if "revision" not in lines or "down_revision" not in lines:
            raise ValueError(f"{path.name}: no `revision = ...` and `down_revision = ...` lines")
        revisions.add(lines["revision"])
        if lines.get("down_revision"):
            parents.add(lines["down_revision"])
    return revisions - parents


def is_current(database_url: str) -> bool:
    """True when the database schema is at the newest migration."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(ALEMBIC_TABLE):
                return False
            # Alembic's table: one row (version_num) per applied head.
            current = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()
    return current == heads()
