"""A revoked API key stops working on every API process within one second.

API processes trust a key they verified for ``VERIFIED_KEY_SECONDS`` (services/keys.py) instead
of asking the database on every request. Two ``filegate serve`` processes on one PostgreSQL
database have both just verified a key; ``filegate keys revoke`` (a third process) revokes it;
both refuse it within a second of the revocation's commit, and keep refusing it.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from filegate.db.engine import Database
from filegate.services import keys
from tests.e2e.live import LiveServer

pytestmark = pytest.mark.postgres

# The promise made to operators (docs/decisions.md): a revoked key stops within one second.
REVOCATION_BOUND = 1.0
POLL = 0.01


def _key_id(database_url: str, raw: str) -> str:
    database = Database(database_url)
    try:
        return keys.authenticate(database, raw).key_id
    finally:
        database.dispose()


def _refused_after(clients: list[httpx.Client], revoked_at: float) -> list[float]:
    """Per client: seconds from ``revoked_at`` to its first 401 (polling), or inf."""
    refused: list[float] = [float("inf")] * len(clients)
    while time.monotonic() - revoked_at < 3 * REVOCATION_BOUND:
        for index, client in enumerate(clients):
            if refused[index] == float("inf"):
                status = client.get("/v1/files", params={"limit": 1}).status_code
                if status == 401:
                    refused[index] = time.monotonic() - revoked_at
                else:
                    assert status == 200, status
        if all(seconds != float("inf") for seconds in refused):
            break
        time.sleep(POLL)
    return refused


def test_a_revoked_key_is_refused_on_every_api_process_within_one_second(
    tmp_path: Path, fresh_postgres: str
) -> None:
    first = LiveServer(tmp_path, fresh_postgres, name="api-a", embedded_worker=False)
    with first:
        second = first.sibling("api-b")
        with second:
            raw = first.create_key("tenant-a", "read")
            key_id = _key_id(fresh_postgres, raw)
            clients = [first.client(raw), second.client(raw)]
            try:
                # Both processes verify the key and keep it; each request inside the window
                # is answered from what the process holds.
                for _ in range(5):
                    for client in clients:
                        assert client.get("/v1/files", params={"limit": 1}).status_code == 200
                database = Database(fresh_postgres)
                try:
                    keys.revoke_key(database, key_id)  # committed when this returns
                finally:
                    database.dispose()
                revoked_at = time.monotonic()
                refused = _refused_after(clients, revoked_at)
                assert max(refused) < REVOCATION_BOUND, refused
                # ...and refused for good: nothing brings the key back.
                time.sleep(keys.VERIFIED_KEY_SECONDS)
                for client in clients:
                    assert client.get("/v1/files").status_code == 401
            finally:
                for client in clients:
                    client.close()
