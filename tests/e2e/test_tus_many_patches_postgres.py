"""On PostgreSQL, more PATCHes at once than the database pool has connections all succeed.

Each PATCH holds its upload's advisory lock on a connection of its own while the body streams
(services/locks.py). Those connections used to come from the pool the requests' queries use
(SQLAlchemy's 5 + 10): 16 PATCHes held all 15 and then waited 30 s for one to read their
upload, and answered 503 ``database_unavailable``. The locks now have a pool of their own,
sized to the process's upload slots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.live import LiveServer, open_patch, read_response, tus_create

pytestmark = pytest.mark.postgres

# More than the 15 connections the query pool may open.
PATCHES = 24
SIZE = 64 * 1024
# Well under the 30 s a starved pool waits: the failure shows as a timeout or a 503.
ANSWER_TIMEOUT = 15.0


def test_more_concurrent_patches_than_pooled_connections_all_succeed(
    tmp_path: Path, fresh_postgres: str
) -> None:
    with LiveServer(tmp_path, fresh_postgres, embedded_worker=False) as server:
        key = server.create_key("tenant-a")
        body = b"filegate " * (SIZE // 9) + b"x" * (SIZE % 9)
        with server.client(key) as client:
            urls = [tus_create(client, SIZE, filename=f"f{n}.txt") for n in range(PATCHES)]
        sockets = [open_patch(server, url, key, 0, SIZE) for url in urls]
        try:
            # Every PATCH is under way (its lock taken) before any of them finishes.
            for sock in sockets:
                sock.sendall(body[: SIZE // 2])
            for sock in sockets:
                sock.sendall(body[SIZE // 2 :])
            answers = [read_response(sock, ANSWER_TIMEOUT) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    assert [a.status for a in answers] == [204] * PATCHES, [
        (a.status, a.body[:200]) for a in answers if a.status != 204
    ]
