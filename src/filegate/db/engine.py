"""Engine and session set-up for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

# Writers wait this long for SQLite's single write lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# A PostgreSQL that accepts connections and never answers must not hold a request for ever:
# connecting gives up after this long (libpq's connect_timeout) ...
PG_CONNECT_TIMEOUT_S = 5
# ... and a statement of the application (not a migration) after this long. Its queries are
# single-row or indexed pages: the slowest takes milliseconds on millions of rows.
PG_STATEMENT_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(
    url: str, *, statement_timeout_ms: int | None = None, pool: tuple[int, int] | None = None
) -> Engine:
    """An engine for ``url``; on PostgreSQL, ``statement_timeout_ms`` bounds every statement
    and ``pool`` is (connections kept, more opened when busy), else SQLAlchemy's (5, 10)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        if statement_timeout_ms is not None:
            connect_args["options"] = f"-c statement_timeout={statement_timeout_ms}"
        sizes = {} if pool is None else {"pool_size": pool[0], "max_overflow": pool[1]}
        return create_engine(
            url, pool_pre_ping=True, future=True, connect_args=connect_args, **sizes
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while the worker writes; FULL so a committed upload survives
    # a power cut, not only a crash.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _skip_identity_sync(state: ORMExecuteState) -> None:
    """Bulk UPDATE and DELETE leave loaded objects alone (``synchronize_session=False``).

    Repositories hand out records, not ORM objects, so there is nothing to keep in step; the
    default ("evaluate" the WHERE clause against every loaded object) was about 5% of the
    Python time of a small upload. A repository that re-reads a row after its own guarded
    UPDATE says ``populate_existing`` (``Jobs.get``).
    """
    if (state.is_update or state.is_delete) and "synchronize_session" not in (
        state.execution_options
    ):
        state.update_execution_options(synchronize_session=False)


class Database:
    """An engine plus a session factory; ``session()`` commits on success, rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, statement_timeout_ms=PG_STATEMENT_TIMEOUT_MS)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self._sessions, "do_orm_execute", _skip_identity_sync)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
