"""Quotas and rate limits across two real API processes on one PostgreSQL and one Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import LiveServer, tus_headers
from tests.support.services import forget_redis_keys

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def two_api_processes(
    tmp_path: Path, fresh_postgres: str, redis_server: str
) -> Iterator[tuple[LiveServer, LiveServer]]:
    name = f"filegate-test-{uuid.uuid4().hex[:12]}"
    env = {
        "FILEGATE_QUEUE_URL": redis_server,
        "FILEGATE_QUEUE_NAME": name,
        "FILEGATE_QUOTAS__UPLOADS_PER_MINUTE": "4",
        "FILEGATE_QUOTAS__IN_FLIGHT_UPLOADS": "2",
        "FILEGATE_QUOTAS__REQUESTS_PER_SECOND": "0",
    }
    first = LiveServer(tmp_path, fresh_postgres, env, name="first")
    second = first.sibling("second")
    try:
        with first, second:
            yield first, second
    finally:
        forget_redis_keys(redis_server, name)


def _upload(server: LiveServer, key: str, name: str) -> int:
    with server.client(key) as client:
        files = {"file": (name, b"some text\n", "text/plain")}
        return client.post("/v1/files", files=files).status_code


def test_upload_rate_and_file_quota_hold_across_two_processes(
    two_api_processes: tuple[LiveServer, LiveServer],
) -> None:
    first, second = two_api_processes
    key = first.create_key("shared")
    answers = [_upload(first, key, "1.txt"), _upload(second, key, "2.txt")]
    answers += [_upload(first, key, "3.txt"), _upload(second, key, "4.txt")]
    assert answers == [202, 202, 202, 202]
    # The fifth upload in the minute is refused by whichever process gets it.
    assert _upload(first, key, "5.txt") == 429
    assert _upload(second, key, "5.txt") == 429
    with second.client(key) as client:
        usage = client.get("/v1/usage").json()
    assert usage["stored_files"] == {"used": 4, "limit": None}
    assert usage["uploads_remaining"] == 0
    assert usage["rate_limits_shared"] is True
    # The in-flight quota is read from the database, so it holds across processes too.
    other = first.create_key("other")
    created = [_tus_create(first, other), _tus_create(second, other)]
    assert created == [201, 201]
    with first.client(other) as client:
        refused = client.post("/v1/tus/", headers=tus_headers(extra={"Upload-Length": "10"}))
    assert refused.status_code == 413
    assert refused.json()["quota"] == "in_flight_uploads"


def _tus_create(server: LiveServer, key: str) -> int:
    with server.client(key) as client:
        headers = tus_headers(extra={"Upload-Length": "10"})
        return client.post("/v1/tus/", headers=headers).status_code
