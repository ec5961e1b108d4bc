"""The upload lock across API processes: PostgreSQL advisory locks on a pool of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from filegate.db.engine import Database, make_engine
from filegate.domain import new_id
from filegate.services import locks as locks_module
from filegate.services.locks import UploadLocks


@pytest.fixture
def database(fresh_postgres: str) -> Iterator[Database]:
    db = Database(fresh_postgres)
    yield db
    db.dispose()


def free_elsewhere(db: Database, upload_id: str) -> bool:
    """Whether another session (another API process) can take the upload's lock now."""
    engine = make_engine(db.url)
    key = {"key": locks_module._lock_key(upload_id)}
    query = text("SELECT pg_try_advisory_lock(:key)")
    try:
        with engine.connect() as connection:
            taken = bool(connection.execute(query, key).scalar())
            connection.execute(text("SELECT pg_advisory_unlock_all()"))
            return taken
    finally:
        engine.dispose()


def test_a_held_upload_is_locked_for_other_processes_until_released(database: Database) -> None:
    upload_id = new_id()
    locks = UploadLocks(database, wait_seconds=5, holders=4)

    async def hold_and_look() -> bool:
        async with locks.hold(upload_id):
            return await asyncio.to_thread(free_elsewhere, database, upload_id)

    try:
        assert asyncio.run(hold_and_look()) is False
        assert free_elsewhere(database, upload_id)
    finally:
        locks.close()


def test_a_request_cancelled_while_taking_the_lock_leaves_the_upload_free(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer request (or a shutdown) cancels one whose try got the lock: the session that
    holds it is closed, not returned to the pool still holding it, which kept the upload
    locked for every other request (423) for as long as that pooled connection lived."""
    upload_id = new_id()
    locks = UploadLocks(database, wait_seconds=5, holders=4)
    taken, go_on = threading.Event(), threading.Event()
    real_try = locks_module._try_advisory_lock

    def slow_try(connection: Connection, key: str) -> bool:
        locked = real_try(connection, key)
        taken.set()
        go_on.wait(10)
        return locked

    monkeypatch.setattr(locks_module, "_try_advisory_lock", slow_try)

    async def cancelled_while_locking() -> None:
        async def hold() -> None:
            async with locks.hold(upload_id):
                await asyncio.sleep(30)

        task = asyncio.create_task(hold())
        await asyncio.to_thread(taken.wait, 10)
        task.cancel()
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(cancelled_while_locking())
        assert free_elsewhere(database, upload_id)
    finally:
        locks.close()
