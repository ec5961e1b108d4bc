"""One writer per upload: a lock per id in this process, and a PostgreSQL advisory lock across
API processes. A newcomer takes over from a holder in this process (its client has usually
reconnected and the old request is dead) instead of waiting for a read timeout, as tusd does.

Waiting never blocks the event loop: the advisory lock is tried in a thread, between sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from filegate.blocking import run_blocking
from filegate.db.engine import Database, make_engine
from filegate.errors import ErrorCode, FilegateError

# How often a waiter retries PostgreSQL's try-lock.
RETRY_SECONDS = 0.05
# Advisory-lock connections kept open between uploads (PostgreSQL), and how many beyond the
# upload slots may be open at once (the locks a completing upload takes on its final upload).
LOCK_CONNECTIONS_KEPT = 16
LOCK_OVERFLOW = 4


@dataclass(eq=False)
class Holder:
    """The request holding an upload; ``taken_over`` tells it why it was cancelled."""

    task: asyncio.Task[object] | None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    taken_over: bool = False

    def request_stop(self) -> None:
        if not self.taken_over and self.task is not None:
            self.taken_over = True
            self.task.cancel("taken over by a newer request for the same upload")


class UploadLocks:
    """``holders``: how many uploads this process may hold at once (its upload slots).

    On PostgreSQL each held upload keeps a connection for its advisory lock while its body
    streams. Those connections come from a pool of their own, sized to ``holders``: taken
    from the pool the request's queries use, 16 concurrent PATCHes held all 15 of its
    connections and then waited 30 s for one to read their upload (503, found by the
    PostgreSQL + Redis benchmark).
    """

    def __init__(self, db: Database, wait_seconds: float, holders: int) -> None:
        self._wait_seconds = wait_seconds
        self._holders: dict[str, Holder] = {}
        self._engine: Engine | None = None
        if db.engine.dialect.name == "postgresql":
            # Kept open: as many as a busy moment needs, up to LOCK_CONNECTIONS_KEPT; beyond
            # that (a burst toward ``holders``) opened and closed per upload.
            kept = min(holders, LOCK_CONNECTIONS_KEPT)
            self._engine = make_engine(db.url, pool=(kept, holders + LOCK_OVERFLOW - kept))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @asynccontextmanager
    async def hold(self, upload_id: str) -> AsyncIterator[Holder]:
        deadline = time.monotonic() + self._wait_seconds
        await self._take_over(upload_id, deadline)
        holder = Holder(task=asyncio.current_task())
        self._holders[upload_id] = holder
        connection = None
        try:
            if self._engine is not None:
                connection = await self._advisory_lock(self._engine, upload_id, deadline)
            yield holder
        except asyncio.CancelledError:
            # Cancelled by a newer request for the same upload (not by a shutdown): answer.
            if not holder.taken_over or holder.task is None:
                raise
            holder.task.uncancel()
            raise FilegateError(
                ErrorCode.TUS_UPLOAD_STOPPED, "A newer request for this upload took over."
            ) from None
        finally:
            if connection is not None:
                await run_blocking(_advisory_unlock, connection, upload_id)
            if self._holders.get(upload_id) is holder:
                del self._holders[upload_id]
            holder.released.set()

    async def _take_over(self, upload_id: str, deadline: float) -> None:
        while (current := self._holders.get(upload_id)) is not None:
            current.request_stop()
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await current.released.wait()
            except TimeoutError:
                raise _locked() from None

    async def _advisory_lock(self, engine: Engine, upload_id: str, deadline: float) -> Connection:
        connection = await run_blocking(_lock_connection, engine)
        try:
            while not await run_blocking(_try_advisory_lock, connection, upload_id):
                if time.monotonic() >= deadline:
                    raise _locked()
                await asyncio.sleep(RETRY_SECONDS)
        except BaseException:
            # Cancelled while a try ran, the lock may be held: ending the session releases
            # it. Returned to the pool instead, the connection would keep the upload locked.
            await run_blocking(_drop, connection)
            raise
        return connection


def _lock_key(upload_id: str) -> int:
    # Advisory locks take a signed 64-bit key; a hash of the id spreads them evenly.
    return int.from_bytes(hashlib.sha256(upload_id.encode()).digest()[:8], "big", signed=True)


def _lock_connection(engine: Engine) -> Connection:
    """A connection of the lock pool in autocommit: a session-level advisory lock needs no
    transaction, so the lock and the unlock are a statement each, with no BEGIN and COMMIT
    around them (610 instead of 710-990 us of CPU per lock and unlock, measured here)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _try_advisory_lock(connection: Connection, upload_id: str) -> bool:
    query = text("SELECT pg_try_advisory_lock(:key)")
    return bool(connection.execute(query, {"key": _lock_key(upload_id)}).scalar())


def _advisory_unlock(connection: Connection, upload_id: str) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _lock_key(upload_id)})
    except BaseException:
        _drop(connection)
        raise
    connection.close()


def _drop(connection: Connection) -> None:
    """Close the connection's session (and any lock it holds), not return it to the pool."""
    connection.invalidate()
    connection.close()


def _locked() -> FilegateError:
    return FilegateError(
        ErrorCode.TUS_UPLOAD_LOCKED, "Another request is writing to this upload; retry shortly."
    )
