"""A throwaway copy of a database, made without writing to the source: SQLite's backup API
from a read-only connection; on PostgreSQL ``CREATE DATABASE ... TEMPLATE`` when no other
session is connected, else ``pg_dump | pg_restore``."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from filegate.db.engine import normalise_url

# The database every PostgreSQL server has, to run CREATE and DROP DATABASE from.
MAINTENANCE_DATABASE = "postgres"
# PostgreSQL cuts identifiers at 63 bytes; the copy's name is the source's plus a suffix.
NAME_PREFIX_LENGTH = 40


class CopyError(Exception):
    """The copy could not be made; the message says why and what to do."""


@dataclass
class Copy:
    url: str
    how: str
    _drop: Callable[[], None]
    # The source's planner statistics came along (a file copy); a restored dump has none.
    statistics: bool = True
    drop_problem: str | None = field(default=None, init=False)
    drop_seconds: float = field(default=0.0, init=False)

    def drop(self) -> None:
        """Remove the copy; a failure is kept in ``drop_problem``, not raised."""
        started = time.monotonic()
        try:
            self._drop()
        except (OSError, SQLAlchemyError) as exc:
            self.drop_problem = f"{type(exc).__name__}: {exc}"
        self.drop_seconds = time.monotonic() - started


@contextmanager
def copied(url: str) -> Iterator[Copy]:
    """A copy of the database at ``url``, dropped when the block ends however it ends."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        copy = _sqlite_copy(Path(parsed.database or ""))
    elif parsed.get_backend_name() == "postgresql":
        copy = _postgres_copy(parsed)
    else:
        raise CopyError(f"cannot copy a {parsed.get_backend_name()} database")
    try:
        yield copy
    finally:
        copy.drop()


def _sqlite_copy(path: Path) -> Copy:
    if not path.is_file():
        raise CopyError(f"no SQLite database at {path}")
    directory = Path(tempfile.mkdtemp(prefix="filegate-rehearsal-"))
    target = directory / path.name
    try:
        # mode=ro: this connection cannot write the source, nor checkpoint its WAL into it.
        readonly = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        with closing(readonly) as source, closing(sqlite3.connect(target)) as destination:
            source.backup(destination)
    except sqlite3.Error as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise CopyError(f"cannot copy {path}: {exc}") from exc
    return Copy(f"sqlite:///{target}", "sqlite backup", lambda: shutil.rmtree(directory))


def _postgres_copy(source: URL) -> Copy:
    name = f"{(source.database or '')[:NAME_PREFIX_LENGTH]}_rehearsal_{secrets.token_hex(4)}"
    admin = sa.create_engine(
        source.set(database=MAINTENANCE_DATABASE), isolation_level="AUTOCOMMIT"
    )
    quote = admin.dialect.identifier_preparer.quote

    def drop() -> None:
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quote(name)} WITH (FORCE)"))
        finally:
            admin.dispose()

    copy_url = source.set(database=name).render_as_string(hide_password=False)
    try:
        with admin.connect() as connection:
            if _alone(connection, source.database or "") and _from_template(
                connection, quote(name), quote(source.database or "")
            ):
                return Copy(copy_url, "CREATE DATABASE ... TEMPLATE", drop)
            connection.execute(sa.text(f"CREATE DATABASE {quote(name)}"))
    except SQLAlchemyError as exc:
        admin.dispose()
        raise CopyError(f"cannot create the copy: {str(exc).splitlines()[0]}") from exc
    try:
        _dump_and_restore(source, source.set(database=name))
    except CopyError:
        drop()
        raise
    return Copy(copy_url, "pg_dump | pg_restore", drop, statistics=False)


def _alone(connection: sa.Connection, database: str) -> bool:
    """No other session is connected to ``database`` (a template copy would fail, or lock
    them out while it runs)."""
    others = connection.execute(
        sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = :name AND backend_type = 'client backend'"
        ),
        {"name": database},
    ).scalar_one()
    return int(others) == 0


def _from_template(connection: sa.Connection, name: str, source: str) -> bool:
    """The copy by file copy on the server; False when a session connected meanwhile."""
    try:
        connection.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {source}"))
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55006":  # object_in_use: the source
            return False
        raise
    return True


def _dump_and_restore(source: URL, target: URL) -> None:
    """``pg_dump -Fc source | pg_restore -d target``; the dump reads one snapshot."""
    dump, restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    if dump is None or restore is None:
        raise CopyError(
            "pg_dump and pg_restore are needed to copy a database other sessions are using "
            "(install the PostgreSQL client, or stop the other sessions)"
        )
    env = {**os.environ, **({"PGPASSWORD": source.password} if source.password else {})}
    flags = ["--no-owner", "--no-privileges"]
    with tempfile.TemporaryFile() as dump_errors:
        dumping = subprocess.Popen(  # noqa: S603 (fixed arguments, no shell)
            [dump, "--format=custom", *flags, f"--dbname={_libpq(source)}"],
            stdout=subprocess.PIPE,
            stderr=dump_errors,
            env=env,
        )
        restored = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [restore, "--exit-on-error", *flags, f"--dbname={_libpq(target)}"],
            stdin=dumping.stdout,
            capture_output=True,
            env=env,
            check=False,
        )
        assert dumping.stdout is not None
        dumping.stdout.close()
        dumped = dumping.wait()
        dump_errors.seek(0)
        problems = dump_errors.read().decode(errors="replace") + restored.stderr.decode(
            errors="replace"
        )
    if dumped or restored.returncode:
        raise CopyError(f"pg_dump | pg_restore failed: {problems.strip()[-2000:]}")


def _libpq(url: URL) -> str:
    """The URL as libpq reads it, without the password (it goes in PGPASSWORD)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
