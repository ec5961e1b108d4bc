"""What every repository shares: one typed way to count changed rows, one to insert-if-new,
one to delete the oldest expired rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Result
from sqlalchemy.orm import Session


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (``Session.execute`` types it as ``Result``)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def insert_new(session: Session, model: type[Any], values: Mapping[str, Any]) -> bool:
    """Insert one row unless it would break a unique key; True if inserted.

    ``INSERT ... ON CONFLICT DO NOTHING`` (both SQLite and PostgreSQL): one statement, where a
    savepoint around an ORM add would cost a flush, a SAVEPOINT and a RELEASE on every call.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = model.__table__
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for a single-row INSERT here.
    return session.execute(statement.returning(*table.primary_key)).first() is not None


def forget_expired(session: Session, model: type[Any], cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` rows of ``model`` whose ``expires_at`` is before ``cutoff``,
    oldest first (its ``expires_at`` index serves both the filter and the order)."""
    lapsed = select(model.id).where(model.expires_at < cutoff).order_by(model.expires_at)
    statement = delete(model).where(model.id.in_(lapsed.limit(limit).scalar_subquery()))
    return rows_changed(session.execute(statement))
