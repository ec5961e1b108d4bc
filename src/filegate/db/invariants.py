"""A migration's expected result as code: each revision defines ``expected(probe)``, returning
what is wrong (empty: all as promised), and `filegate db rehearse` runs it right after the
revision's upgrade on a copy of the real database.

Revisions are frozen history, so these checks speak table and column names and plain SQL,
never the models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

ALEMBIC_TABLE = "alembic_version"


@dataclass(frozen=True, slots=True)
class Probe:
    """The database just after a revision ran, and its row counts just before it ran."""

    connection: Connection
    rows_before: Mapping[str, int]

    def table(self, name: str, *, columns: str = "", indexes: str = "") -> list[str]:
        """The table exists with these columns and these indexes or unique constraints (each
        a list of names separated by spaces)."""
        inspector = sa.inspect(self.connection)
        if not inspector.has_table(name):
            return [f"table {name} is missing"]
        have = {c["name"] for c in inspector.get_columns(name)}
        named = self._indexes(name)
        return [f"column {name}.{c} is missing" for c in columns.split() if c not in have] + [
            f"index {i} on {name} is missing" for i in indexes.split() if i not in named
        ]

    def column(
        self, table: str, name: str, *, nullable: bool | None = None, length: int | None = None
    ) -> list[str]:
        """The column exists, and is (not) nullable and this long when asked."""
        found = [c for c in sa.inspect(self.connection).get_columns(table) if c["name"] == name]
        if not found:
            return [f"column {table}.{name} is missing"]
        problems = []
        if nullable is not None and found[0]["nullable"] != nullable:
            problems.append(f"column {table}.{name} should {'' if nullable else 'not '}be null")
        actual = getattr(found[0]["type"], "length", None)
        if length is not None and actual != length:
            problems.append(f"column {table}.{name} is {actual} long, expected {length}")
        return problems

    def no_index(self, table: str, name: str) -> list[str]:
        """The index is gone (a revision that replaced it)."""
        return [f"index {name} on {table} is still there"] if name in self._indexes(table) else []

    def indexes_valid(self) -> list[str]:
        """No index left invalid by a failed ``CREATE INDEX CONCURRENTLY`` (PostgreSQL)."""
        if self.connection.dialect.name != "postgresql":
            return []
        query = sa.text("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
        return [f"index {name} is invalid" for name in self.connection.execute(query).scalars()]

    def _indexes(self, table: str) -> set[str]:
        inspector = sa.inspect(self.connection)
        names = {i["name"] for i in inspector.get_indexes(table)}
        names |= {u["name"] for u in inspector.get_unique_constraints(table)}
        return {name for name in names if name}

    def rows_kept(self, *tables: str) -> list[str]:
        """Each table that existed before the revision has as many rows as it had."""
        now = row_counts(self.connection, [t for t in tables if t in self.rows_before])
        return [
            f"{table} had {self.rows_before[table]} rows, now {count}"
            for table, count in now.items()
            if count != self.rows_before[table]
        ]

    def no_rows(self, table: str, where: str) -> list[str]:
        """No row of ``table`` matches ``where`` (SQL): rows a data migration should have
        filled, or must have left alone."""
        query = sa.text(f"SELECT count(*) FROM {table} WHERE {where}")  # noqa: S608 (our text)
        found = int(self.connection.execute(query).scalar_one())
        return [f"{found} rows of {table} where {where}"] if found else []


def row_counts(connection: Connection, tables: Iterable[str] | None = None) -> dict[str, int]:
    """Rows per table (every table but Alembic's when ``tables`` is None)."""
    names = user_tables(connection) if tables is None else list(tables)
    return {
        name: int(
            connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
        )
        for name in names
    }


def user_tables(connection: Connection) -> list[str]:
    return sorted(set(sa.inspect(connection).get_table_names()) - {ALEMBIC_TABLE})


def schema_of(connection: Connection) -> dict[str, Any]:
    """Tables, their columns (type, nullability), indexes and unique constraints: what a
    downgrade must give back exactly."""
    inspector = sa.inspect(connection)
    return {
        table: {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
        }
        for table in user_tables(connection)
    }
