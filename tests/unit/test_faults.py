"""Dependencies that fail under a running API: a TCP proxy we control sits between filegate and
the real PostgreSQL, Redis and clamd, and cuts or freezes them. What the client sees, and what
is lost (nothing), is what these tests pin down; docs/reliability.md lists the figures."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from filegate.config import Settings, load_settings
from filegate.db import migrate
from filegate.db.repository import Files, Jobs
from filegate.domain import FileState, JobKind
from filegate.inspect.antivirus import ScannerConfig
from filegate.inspect.sandbox import Sandbox
from filegate.jobs.queue import REDIS_READ_SECONDS
from filegate.services import maintenance
from filegate.services.readiness import PROBE_SECONDS
from tests.conftest import running_api
from tests.support.proxy import TcpProxy, tcp_proxy
from tests.support.services import without_filegate_env

TEXT = b"plain words, nothing else\n"


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return without_filegate_env(monkeypatch, tmp_path)


def _through(url: str, proxy_factory: type[TcpProxy] = TcpProxy) -> tuple[TcpProxy, str]:
    parts = urlsplit(url)
    assert parts.hostname
    assert parts.port
    proxy = proxy_factory(parts.hostname, parts.port)
    return proxy, url.replace(f":{parts.port}", f":{proxy.port}", 1)


@pytest.fixture
def pg_proxy(fresh_postgres: str) -> Iterator[tuple[TcpProxy, str]]:
    migrate.upgrade(fresh_postgres)
    proxy, url = _through(fresh_postgres)
    try:
        yield proxy, url
    finally:
        proxy.close()


@pytest.mark.postgres
def test_postgresql_cut_answers_503_at_once_and_recovers_without_a_restart(
    clean_env: Path, sandbox: Sandbox, pg_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, url = pg_proxy
    settings = load_settings(data_dir=clean_env / "var", database_url=url)
    with running_api(settings, sandbox) as api:
        assert api.upload(TEXT, "before.txt").status_code == 202
        proxy.set_mode("cut")
        started = time.monotonic()
        listed = api.client.get("/v1/files", headers=api.auth())
        upload = api.upload(TEXT, "during.txt")
        seconds = time.monotonic() - started
        for answer in (listed, upload):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.json()["code"] == "database_unavailable"
            assert "errno" not in answer.text
            assert "127.0.0.1" not in answer.text
        assert seconds < 5
        # The refused upload left no bytes behind; nothing accepted before is lost.
        quarantine = clean_env / "var" / "storage" / "quarantine"
        assert len([p for p in quarantine.rglob("*") if p.is_file()]) == 1
        proxy.set_mode("pass")
        listed = api.client.get("/v1/files", headers=api.auth())
        assert listed.status_code == 200
        assert [item["name"] for item in listed.json()["items"]] == ["before.txt"]
    print(f"PostgreSQL cut: two requests answered 503 in {seconds:.2f} s")


@pytest.mark.postgres
def test_postgresql_frozen_fails_readiness_within_its_deadline(
    clean_env: Path, sandbox: Sandbox, pg_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, url = pg_proxy
    settings = load_settings(data_dir=clean_env / "var", database_url=url)
    with running_api(settings, sandbox) as api:
        assert api.client.get("/readyz").status_code == 200
        proxy.set_mode("hang")
        time.sleep(2.1)  # past the readiness cache
        started = time.monotonic()
        ready = api.client.get("/readyz")
        seconds = time.monotonic() - started
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"
        assert seconds < PROBE_SECONDS + 1
        assert api.client.get("/healthz").status_code == 200  # the process itself is fine
        proxy.set_mode("pass")
    print(f"PostgreSQL frozen: /readyz said 503 in {seconds:.2f} s")


@pytest.fixture
def redis_proxy(redis_server: str, clean_env: Path) -> Iterator[tuple[TcpProxy, Settings]]:
    proxy, url = _through(redis_server)
    name = f"filegate-test-faults-{os.getpid()}-{time.monotonic_ns()}"
    settings = load_settings(
        data_dir=clean_env / "var",
        database_url=f"sqlite:///{clean_env / 'filegate.db'}",
        queue_url=url,
        queue_name=name,
    )
    migrate.upgrade(settings.resolved_database_url)
    try:
        yield proxy, settings
    finally:
        proxy.close()


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["cut", "hang"])
def test_a_redis_outage_loses_no_upload_and_the_job_is_sent_again(
    redis_proxy: tuple[TcpProxy, Settings], sandbox: Sandbox, mode: str
) -> None:
    proxy, settings = redis_proxy
    with running_api(settings, sandbox) as api:
        proxy.set_mode(mode)  # type: ignore[arg-type]
        started = time.monotonic()
        answer = api.upload(TEXT, "notes.txt")
        seconds = time.monotonic() - started
        assert answer.status_code == 202, answer.text
        assert seconds < REDIS_READ_SECONDS + 2
        file_id = answer.json()["id"]
        # The next uploads keep their trigger without waiting on the broker again.
        started = time.monotonic()
        second = api.upload(TEXT, "second.txt")
        second_seconds = time.monotonic() - started
        assert second.status_code == 202
        # Not the 5 s send timeout again; at most the rate limiter's own 0.5 s Redis timeout.
        assert second_seconds < REDIS_READ_SECONDS / 2
        with api.runtime.db.session() as session:
            assert Jobs(session).get(JobKind.INSPECT, file_id) is not None  # in the ledger
        time.sleep(2.1)
        assert api.client.get("/readyz").json()["checks"]["queue"] != "ok"
        proxy.set_mode("pass")
        # The next readiness probe (a load balancer polls it) finds the broker back and sends
        # the kept triggers; every file ends clean.
        time.sleep(2.1)
        assert api.client.get("/readyz").status_code == 200
        later = api.upload(TEXT, "later.txt").json()["id"]
        api.inspect(wait_seconds=2.0)
        ids = [file_id, second.json()["id"], later]
        with api.runtime.db.session() as session:
            states = Files(session).states(ids)
        assert states == dict.fromkeys(ids, FileState.CLEAN)
    print(
        f"Redis {mode}: first upload answered 202 in {seconds:.2f} s, the next in "
        f"{second_seconds:.2f} s; nothing lost"
    )


def test_a_frozen_clamd_keeps_the_file_quarantined_and_costs_requests_nothing(
    settings: Settings, sandbox: Sandbox, clamd: ScannerConfig
) -> None:
    parts = urlsplit(clamd.url)
    target = (parts.path, None) if parts.scheme == "unix" else (parts.hostname, parts.port)
    with tcp_proxy(*target) as proxy:  # type: ignore[arg-type]
        frozen = settings.model_copy(
            update={
                "clamd_url": proxy.url_for("tcp://127.0.0.1:{port}"),
                "scanner_required": True,
                "scanner_timeout_seconds": 1.0,
            }
        )
        with running_api(frozen, sandbox) as api:
            proxy.set_mode("hang")
            file_id = api.upload(TEXT, "scan-me.txt").json()["id"]
            api.inspect()
            started = time.monotonic()
            listed = api.client.get("/v1/files", headers=api.auth())
            seconds = time.monotonic() - started
            assert listed.status_code == 200
            assert seconds < 1
            state = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()["state"]
            assert state == "quarantined"  # never promoted unscanned
            proxy.set_mode("pass")
            maintenance.rescan(api.runtime.db, api.runtime.queue, lambda: 0)
            api.inspect()
            state = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()["state"]
            assert state == "clean"
