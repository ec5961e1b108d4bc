"""Databases for the tests: scratch PostgreSQL databases, generated rows at scale, and a
checksum of everything a database holds.

Rows are generated fast: one ``INSERT ... SELECT`` over a number series per table
(PostgreSQL's generate_series, a recursive CTE on SQLite). Shapes follow production: 50
tenants, most files clean and most jobs done, a few queued or running; times spread backwards
from now. Only the columns a table has at the database's revision are filled, so a database
can be grown revision by revision, as a real one was.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from filegate.db import migrate
from filegate.db.engine import make_engine, normalise_url

# The tables that grow with use; each gets ``rows`` rows. The others get a handful.
LARGE_TABLES = ("files", "uploads", "jobs", "webhook_events", "imports", "signal_minutes")
SMALL_ROWS = 100
TENANTS = 50
# The signals of one minute: signal_minutes gets ``rows`` of them, newest minute first.
SIGNALS_PER_MINUTE = 10


@dataclass(frozen=True)
class Sql:
    """The few expressions the two dialects spell differently; ``n`` is the series value."""

    postgres: bool

    def series(self, rows: int) -> str:
        if self.postgres:
            return f"generate_series(1, {rows}) AS s(n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
            "SELECT n FROM s) AS s"
        )

    def ulid(self, expr: str) -> str:
        """A 26-character id that sorts like ``expr`` (ULIDs sort by creation time)."""
        if self.postgres:
            return f"'01J' || lpad(({expr})::text, 23, '0')"
        return f"'01J' || printf('%023d', {expr})"

    def hex64(self, expr: str) -> str:
        if self.postgres:
            return f"md5(({expr})::text) || md5((({expr}) + 1)::text)"
        return f"printf('%064x', {expr})"

    def text(self, expr: str) -> str:
        return f"({expr})::text" if self.postgres else f"CAST({expr} AS TEXT)"

    def ago(self, seconds: str) -> str:
        """Now minus ``seconds``, as the column type stores it."""
        if self.postgres:
            return f"now() - ({seconds}) * interval '1 second'"
        # SQLAlchemy's SQLite DateTime format, which the application's queries compare with.
        shift = f"printf('%+d seconds', -({seconds}))"
        return f"strftime('%Y-%m-%d %H:%M:%S', 'now', {shift}) || '.000000'"

    def minute_ago(self, minutes: str) -> str:
        if self.postgres:
            return f"date_trunc('minute', now()) - ({minutes}) * interval '1 minute'"
        shift = f"printf('%+d minutes', -({minutes}))"
        return f"strftime('%Y-%m-%d %H:%M:00', 'now', {shift}) || '.000000'"

    def pick(self, expr: str, *values: str) -> str:
        """One of ``values`` by ``expr`` modulo their number."""
        whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
        return f"CASE ({expr}) % {len(values)} {whens} END"


def columns(sql: Sql, rows: int) -> dict[str, dict[str, str]]:
    """Per table, an expression for each column it may have."""
    tenant = f"'tenant-' || {sql.text(f'n % {TENANTS}')}"
    state = (
        "CASE WHEN n % 20 = 0 THEN 'rejected' WHEN n % 50 = 1 THEN 'quarantined' ELSE 'clean' END"
    )
    job_state = (
        "CASE WHEN n % 1000 = 0 THEN 'queued' WHEN n % 1000 = 1 THEN 'running' "
        "WHEN n % 100 = 2 THEN 'failed' ELSE 'done' END"
    )
    event_state = (
        "CASE WHEN n % 100 = 0 THEN 'pending' WHEN n % 50 = 1 THEN 'failed' ELSE 'delivered' END"
    )
    return {
        "files": {
            "id": sql.ulid("n"),
            "tenant": tenant,
            "original_name": f"'photo-' || {sql.text('n')} || '.png'",
            "display_name": f"'photo-' || {sql.text('n')} || '.png'",
            "size": "1000 + n % 5000",
            "sha256": sql.hex64("n"),
            "declared_type": "'image/png'",
            "detected_type": "'image/png'",
            "profile": "'default'",
            "state": state,
            "findings": "'[]'",
            "created_at": sql.ago(f"({rows} - n) * 10"),
            "updated_at": sql.ago(f"({rows} - n) * 10"),
            "inspected_at": sql.ago(f"({rows} - n) * 10"),
            "verdict": f"CASE WHEN n % 50 = 1 THEN NULL ELSE {state} END",
            "received_sha256": sql.hex64("n"),
            "received_size": "1000 + n % 5000",
        },
        "uploads": {
            "id": sql.ulid("n"),
            "tenant": tenant,
            "profile": "'default'",
            "length": "1000000",
            "offset": "CASE WHEN n % 100 = 0 THEN 5000 ELSE 1000000 END",
            "metadata_header": "'filename cGhvdG8ucG5n'",
            "filename": "'photo.png'",
            "state": "CASE WHEN n % 100 = 0 THEN 'receiving' ELSE 'complete' END",
            "expires_at": sql.ago(f"({rows} - n) * 10 - 86400"),
            "created_at": sql.ago(f"({rows} - n) * 10"),
            "updated_at": sql.ago(f"({rows} - n) * 10"),
        },
        "jobs": {
            "id": sql.ulid("n"),
            "kind": sql.pick("n", "inspect", "promote", "deliver"),
            "subject": sql.ulid("n"),
            "state": job_state,
            "attempts": "1",
            "run_after": sql.ago(f"({rows} - n) * 10"),
            "enqueued_at": sql.ago(f"({rows} - n) * 10"),
            "started_at": sql.ago(f"({rows} - n) * 10 - 1"),
            "finished_at": f"CASE WHEN {job_state} IN ('done', 'failed') "
            f"THEN {sql.ago(f'({rows} - n) * 10 - 2')} END",
            "outcome": "'clean'",
            "error": "CASE WHEN n % 100 = 2 THEN 'boom' END",
        },
        "webhook_endpoints": {
            "id": sql.ulid("n"),
            "tenant": tenant,
            "url": "'https://hooks.example/' || " + sql.text("n"),
            "secret": "'whsec_' || " + sql.hex64("n"),
            "events": "'[\"file.clean\"]'",
            "created_at": sql.ago(f"({SMALL_ROWS} - n) * 86400"),
        },
        "webhook_events": {
            "id": sql.ulid("n"),
            "endpoint_id": sql.ulid(f"n % {SMALL_ROWS} + 1"),
            "tenant": tenant,
            "type": "'file.clean'",
            "subject": sql.ulid("n"),
            "payload": "'{}'",
            "state": event_state,
            "attempts": "1",
            "last_status": "CASE WHEN n % 50 = 1 THEN 500 ELSE 204 END",
            "last_error": "CASE WHEN n % 50 = 1 THEN 'http_500' END",
            "created_at": sql.ago(f"({rows} - n) * 10"),
            "delivered_at": sql.ago(f"({rows} - n) * 10 - 1"),
        },
        "imports": {
            "id": sql.ulid("n"),
            "tenant": tenant,
            "source": "'/srv/archive/' || " + sql.text("n") + " || '.pdf'",
            "sha256": sql.hex64("n"),
            "file_id": sql.ulid("n"),
            "created_at": sql.ago(f"({rows} - n) * 10"),
        },
        "api_keys": {
            "id": sql.ulid("n"),
            "tenant": tenant,
            "name": "'ci'",
            "prefix": "'fgk_' || " + sql.text("n"),
            "key_hash": sql.hex64("n"),
            "scopes": "'read,upload'",
            "created_at": sql.ago("n * 3600"),
        },
        "signal_minutes": {
            "minute": sql.minute_ago(f"n / {SIGNALS_PER_MINUTE}"),
            "release": "'1.4.0'",
            "signal": sql.pick(f"n % {SIGNALS_PER_MINUTE}", "requests", "verdicts"),
            "label": f"'label-' || {sql.text(f'n % {SIGNALS_PER_MINUTE}')}",
            "count": "n % 7",
            "total": "0",
        },
        "processes": {
            "id": sql.ulid("n"),
            "release": "'1.4.0'",
            "role": "'api'",
            "hostname": "'host-' || " + sql.text("n"),
            "pid": "n",
            "started_at": sql.ago("n * 3600"),
            "last_seen_at": sql.ago("n * 3600 - 60"),
        },
    }


def fill(url: str, rows: int) -> dict[str, int]:
    """Fill every empty table this module knows; returns the rows added per table."""
    engine = make_engine(url)
    sql = Sql(engine.dialect.name == "postgresql")
    filled = {}
    try:
        with engine.begin() as connection:
            inspector = sa.inspect(connection)
            for table, expressions in columns(sql, rows).items():
                if not inspector.has_table(table) or _has_rows(connection, table):
                    continue
                count = rows if table in LARGE_TABLES else SMALL_ROWS
                _insert(connection, table, expressions, sql.series(count))
                filled[table] = count
    finally:
        engine.dispose()
    return filled


def grow(url: str, until: str, rows: int) -> dict[str, float]:
    """Upgrade revision by revision up to ``until``, filling each table as it appears, as a
    real database grew; returns each revision's upgrade time in seconds."""
    history = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).iterate_revisions(until, "base")
    seconds = {}
    for revision in reversed([r.revision for r in history if r is not None]):
        started = time.monotonic()
        migrate.upgrade(url, revision)
        seconds[revision] = time.monotonic() - started
        fill(url, rows)
    analyze(url)
    return seconds


def analyze(url: str) -> None:
    """Fresh planner statistics (PostgreSQL; autovacuum would do it within minutes)."""
    engine = make_engine(url)
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                    sa.text("ANALYZE")
                )
    finally:
        engine.dispose()


def _has_rows(connection: sa.Connection, table: str) -> bool:
    return connection.execute(sa.text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None


def _insert(
    connection: sa.Connection, table: str, expressions: Mapping[str, str], series: str
) -> None:
    have = sa.inspect(connection).get_columns(table)
    missing = [c["name"] for c in have if c["name"] not in expressions and not c["nullable"]]
    assert not missing, f"no expression for {table}.{missing}"
    names = [c["name"] for c in have if c["name"] in expressions]
    quoted = ", ".join(f'"{name}"' for name in names)
    values = ", ".join(expressions[name] for name in names)
    connection.execute(sa.text(f"INSERT INTO {table} ({quoted}) SELECT {values} FROM {series}"))


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``admin_url``, dropped afterwards."""
    name = f"filegate_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def checksum(url: str) -> str:
    """A digest of everything the database holds: for SQLite its file (and write-ahead log);
    for PostgreSQL every table's rows, alembic_version included, and the schema."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        digest = hashlib.sha256(path.read_bytes())
        wal = path.with_name(path.name + "-wal")
        digest.update(wal.read_bytes() if wal.exists() else b"")
        return digest.hexdigest()
    engine = make_engine(url)
    digest = hashlib.sha256()
    try:
        with engine.connect() as connection:
            for query in _SCHEMA_QUERIES:
                digest.update(repr(connection.execute(sa.text(query)).all()).encode())
            for table in sorted(sa.inspect(connection).get_table_names()):
                # A 64-bit hash of each row, summed: any row added, removed or changed shows.
                rows = f"SELECT count(*), sum(hashtextextended(t::text, 0)::numeric) FROM {table} t"
                digest.update(f"{table}:{connection.execute(sa.text(rows)).one()}".encode())
    finally:
        engine.dispose()
    return digest.hexdigest()


_SCHEMA_QUERIES = (
    "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable "
    "FROM information_schema.columns WHERE table_schema = 'public' "
    "ORDER BY table_name, column_name",
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
    "ORDER BY tablename, indexname",
)


# Deletes what its expected() says it keeps; its downgrade cannot bring the rows back.
BREAKS_ITS_PROMISE = '''"""Delete the rejected files (a mistake).

Revision ID: 0999
Revises: {head}
"""

from alembic import op

from filegate.db.invariants import Probe

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM files WHERE state = 'rejected'")


def downgrade() -> None:
    pass


def expected(probe: Probe) -> list[str]:
    return probe.rows_kept("files")
'''
# Upgrades as promised; its downgrade fails.
CANNOT_GO_BACK = '''"""A table that cannot be dropped again (a mistake).

Revision ID: 0999
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

from filegate.db.invariants import Probe

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("no_such_table")


def expected(probe: Probe) -> list[str]:
    return probe.table("notes", columns="id")
'''


def with_revision(tmp_path: Path, source: str) -> Path:
    """The real migrations plus one more revision on top of the head."""
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory(str(migrate.MIGRATIONS_DIR)).get_current_head()
    (scripts / "versions" / "0999_extra.py").write_text(source.replace("{head}", str(head)))
    return scripts
