"""Quotas and rate limits per tenant and key, on SQLite and PostgreSQL, in memory and in Redis.

Two apps on one database and one Redis stand in for two API processes here; the e2e suite
runs two real server processes (tests/e2e/test_quotas_live.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from filegate.config import Quotas, Settings
from filegate.db.engine import Database
from filegate.inspect.sandbox import Sandbox
from filegate.services import quotas
from filegate.services.ratelimits import RateLimiter
from filegate.web.deps import count_request
from tests.conftest import Api, running_api
from tests.support.services import forget_redis_keys

TUS = {"Tus-Resumable": "1.0.0"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _with(settings: Settings, **quotas: object) -> Settings:
    return settings.model_copy(update={"quotas": Quotas(**quotas)})  # type: ignore[arg-type]


def _tus_create(api: Api, length: int, who: str = "a") -> int:
    headers = {**TUS, **api.auth(who), "Upload-Length": str(length)}
    return api.client.post("/v1/tus/", headers=headers).status_code


def _quota_problem(response: object, quota: str) -> None:
    assert response.status_code == 413, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "quota_exceeded"
    assert body["quota"] == quota


def test_stored_bytes_quota_refuses_the_upload_that_would_pass_it(
    settings: Settings, sandbox: Sandbox
) -> None:
    with running_api(_with(settings, stored_bytes=300), sandbox) as api:
        assert api.upload(b"a" * 200, "one.txt").status_code == 202
        refused = api.upload(b"b" * 200, "two.txt")
        _quota_problem(refused, "stored_bytes")
        assert refused.json()["limit"] == 300
        # Other tenants are not affected, and nothing of the refused upload was kept.
        assert api.upload(b"c" * 200, "three.txt", who="b").status_code == 202
        usage = api.client.get("/v1/usage", headers=api.auth()).json()
        assert usage["stored_bytes"] == {"used": 200, "limit": 300}
        assert usage["stored_files"] == {"used": 1, "limit": None}


def test_stored_files_quota_counts_uploads_under_way(settings: Settings, sandbox: Sandbox) -> None:
    with running_api(_with(settings, stored_files=2), sandbox) as api:
        assert api.upload(b"hello", "one.txt").status_code == 202
        assert _tus_create(api, 10) == 201  # on its way to becoming the second file
        _quota_problem(api.upload(b"again", "two.txt"), "stored_files")
        file_id = api.client.get("/v1/files", headers=api.auth()).json()["items"][0]["id"]
        assert api.client.delete(f"/v1/files/{file_id}", headers=api.auth()).status_code == 204
        assert api.upload(b"again", "two.txt").status_code == 202  # deleting frees room


def test_in_flight_quotas_count_declared_and_deferred_lengths(
    settings: Settings, sandbox: Sandbox
) -> None:
    quotas = {"in_flight_bytes": 1000, "in_flight_uploads": 3}
    with running_api(_with(settings, **quotas), sandbox) as api:
        assert _tus_create(api, 600) == 201
        too_much = api.client.post(
            "/v1/tus/", headers={**TUS, **api.auth(), "Upload-Length": "500"}
        )
        _quota_problem(too_much, "in_flight_bytes")
        # A deferred length counts as the profile's max_size (100 MiB): far over.
        deferred = api.client.post(
            "/v1/tus/", headers={**TUS, **api.auth(), "Upload-Defer-Length": "1"}
        )
        _quota_problem(deferred, "in_flight_bytes")
        assert _tus_create(api, 100) == 201
        assert _tus_create(api, 100) == 201
        _quota_problem(
            api.client.post("/v1/tus/", headers={**TUS, **api.auth(), "Upload-Length": "1"}),
            "in_flight_uploads",
        )
        assert _tus_create(api, 600, who="b") == 201  # per tenant
        usage = api.client.get("/v1/usage", headers=api.auth("a-read")).json()
        assert usage["in_flight_bytes"] == {"used": 800, "limit": 1000}
        assert usage["in_flight_uploads"] == {"used": 3, "limit": 3}


def test_a_finished_tus_upload_leaves_the_in_flight_count(
    settings: Settings, sandbox: Sandbox
) -> None:
    with running_api(_with(settings, in_flight_uploads=1), sandbox) as api:
        created = api.client.post(
            "/v1/tus/",
            headers={**TUS, **api.auth(), "Upload-Length": "5", "Upload-Metadata": ""},
        )
        location = created.headers["Location"]
        patch = {**TUS, **api.auth(), "Upload-Offset": "0"}
        patch["Content-Type"] = "application/offset+octet-stream"
        assert api.client.patch(location, headers=patch, content=b"hello").status_code == 204
        assert _tus_create(api, 5) == 201


def test_the_files_kept_are_summed_only_when_a_quota_on_them_is_set(
    settings: Settings, db: Database
) -> None:
    """Summing a tenant's files reads every one of its rows: millions, for a big tenant.
    The default quotas (uploads under way only) must not pay for it on every upload."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        quotas.check_room(db, settings, "t", 10, resumable=True)
        assert statements, "the in-flight quota reads the uploads under way"
        assert not [s for s in statements if "FROM files" in s]
        stored = _with(settings, stored_files=5)
        quotas.check_room(db, stored, "t", 10, resumable=True)
        assert [s for s in statements if "FROM files" in s]
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_uploads_per_minute_per_tenant(settings: Settings, sandbox: Sandbox) -> None:
    with running_api(_with(settings, uploads_per_minute=3), sandbox) as api:
        assert api.upload(b"1", "1.txt").status_code == 202
        assert _tus_create(api, 5) == 201
        assert api.upload(b"3", "3.txt").status_code == 202
        refused = api.upload(b"4", "4.txt")
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert _tus_create(api, 5) == 429
        assert api.upload(b"5", "5.txt", who="b").status_code == 202  # per tenant
        usage = api.client.get("/v1/usage", headers=api.auth()).json()
        assert usage["uploads_per_minute"] == 3
        assert usage["uploads_remaining"] == 0


def test_requests_per_second_per_key(settings: Settings, sandbox: Sandbox) -> None:
    with running_api(_with(settings, requests_per_second=5), sandbox) as api:
        started = time.monotonic()
        statuses = []
        while 429 not in statuses and len(statuses) < 100:
            answer = api.client.get("/v1/files", headers=api.auth())
            statuses.append(answer.status_code)
        seconds = time.monotonic() - started
        assert answer.status_code == 429
        assert answer.json()["code"] == "rate_limited"
        assert answer.headers["retry-after"] == "1"
        # At 5 per second: at least 5 pass, and no more than the windows it took allow. The
        # sliding window counter weighs the previous window's count by the time left, so a
        # burst across a window boundary may get one more through (limits' approximation).
        assert 5 <= statuses.count(200) <= 5 * (seconds + 1) + 1
        # Another key of the same tenant has its own budget.
        assert api.client.get("/v1/files", headers=api.auth("a-read")).status_code == 200


def test_limits_off_when_zero(settings: Settings, sandbox: Sandbox) -> None:
    off = _with(
        settings,
        in_flight_bytes=0,
        in_flight_uploads=0,
        uploads_per_minute=0,
        requests_per_second=0,
    )
    with running_api(off, sandbox) as api:
        for index in range(5):
            assert _tus_create(api, 100 * 2**20) == 201, index
        usage = api.client.get("/v1/usage", headers=api.auth()).json()
        assert usage["in_flight_bytes"] == {"used": 500 * 2**20, "limit": None}
        assert usage["uploads_remaining"] is None
        assert usage["rate_limits_shared"] is False


@pytest.fixture
def redis_limits(redis_server: str, settings: Settings) -> Iterator[Settings]:
    name = f"filegate-test-{uuid.uuid4().hex[:12]}"
    yield settings.model_copy(update={"queue_url": redis_server, "queue_name": name})
    forget_redis_keys(redis_server, name)


@pytest.mark.redis
def test_rate_limits_are_shared_through_redis(redis_limits: Settings, sandbox: Sandbox) -> None:
    shared = _with(redis_limits, uploads_per_minute=4, requests_per_second=0)
    with running_api(shared, sandbox) as one, running_api(shared, sandbox) as two:
        two.keys = one.keys  # the second "process" serves the same database's keys
        accepted = [one.upload(b"x", "x.txt").status_code for _ in range(2)]
        accepted += [two.upload(b"y", "y.txt").status_code for _ in range(2)]
        assert accepted == [202] * 4
        assert one.upload(b"z", "z.txt").status_code == 429
        assert two.upload(b"z", "z.txt").status_code == 429
        assert two.client.get("/v1/usage", headers=two.auth()).json()["rate_limits_shared"]


@pytest.mark.redis
def test_a_redis_outage_lets_requests_through(
    redis_limits: Settings, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 9 (discard): the limiter cannot count, and must not block.
    down = _with(
        redis_limits.model_copy(update={"queue_url": "redis://127.0.0.1:9/0"}),
        uploads_per_minute=1,
        requests_per_second=1,
    )
    with running_api(down, sandbox) as api:
        statuses = [api.client.get("/v1/files", headers=api.auth()).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]


@pytest.mark.redis
def test_a_request_count_kept_in_redis_runs_off_the_event_loop(redis_limits: Settings) -> None:
    """The console counts a request outside principal_for; a count in Redis is network I/O
    and must not run on the event loop (a slow Redis would stall every request)."""
    limiter = RateLimiter(_with(redis_limits, requests_per_second=5))
    local = RateLimiter(
        _with(redis_limits.model_copy(update={"queue_url": ""}), requests_per_second=5)
    )
    assert limiter.request_waits
    assert not local.request_waits
    threads: list[threading.Thread] = []

    async def main() -> None:
        for counted in (limiter, local):
            original = counted.request

            def request(key_id: str, original: Any = original) -> None:
                threads.append(threading.current_thread())
                original(key_id)

            counted.request = request  # type: ignore[method-assign]
            await count_request(counted, "key-1")

    asyncio.run(main())
    assert threads[0] is not threading.main_thread()  # Redis: in a thread
    assert threads[1] is threading.main_thread()  # in process: no hop
