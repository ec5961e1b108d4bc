"""Alembic environment: filegate's models, batch mode so SQLite can alter tables; offline
(``--sql``) too, so the SQL of each revision can be linted."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from filegate.db.engine import make_engine
from filegate.db.models import Base, UTCDateTime

# A migration that waits longer than this for a table's lock gives up (run it again later)
# rather than queue every query of the running application behind it (PostgreSQL).
LOCK_TIMEOUT = "10s"


def run_migrations() -> None:
    with context.begin_transaction():
        if context.get_context().dialect.name == "postgresql":
            context.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        context.run_migrations()


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations are frozen history: they spell plain SQLAlchemy types, never our own."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
url = config.get_main_option("sqlalchemy.url")
if url is None:
    raise RuntimeError("sqlalchemy.url is not set; run migrations through `filegate migrate`")

options: dict[str, Any] = {
    "target_metadata": Base.metadata,
    "render_as_batch": True,
    "compare_type": True,
    "render_item": render_item,
}
if context.is_offline_mode():
    # `upgrade A:B --sql`: the SQL a revision would run, for squawk (test_migration_lint.py).
    context.configure(url=url, literal_binds=True, **options)
    run_migrations()
else:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, **options)
            run_migrations()
    finally:
        engine.dispose()
