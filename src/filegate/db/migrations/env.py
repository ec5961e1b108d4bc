"""Alembic environment: filegate's models, batch mode so SQLite can alter tables."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from filegate.db.engine import make_engine
from filegate.db.models import Base, UTCDateTime


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations are frozen history: they spell plain SQLAlchemy types, never our own."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
url = config.get_main_option("sqlalchemy.url")
if url is None:
    raise RuntimeError("sqlalchemy.url is not set; run migrations through `filegate migrate`")

engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
