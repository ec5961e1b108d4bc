"""Readiness probes against dependencies that accept connections and never answer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from filegate.config import Settings
from filegate.db.engine import PG_CONNECT_TIMEOUT_S, Database
from filegate.inspect.sandbox import Sandbox
from filegate.services import readiness
from tests.conftest import running_api


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback TCP port that accepts connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


def test_a_silent_scanner_costs_readyz_seconds_and_other_requests_nothing(
    settings: Settings, sandbox: Sandbox, silent_port: int
) -> None:
    # Each /readyz used to wait clamd's 30 s timeout on one of the 8 threads requests run
    # on; ten of them made every list, upload and tus create take ~29 s.
    silent = settings.model_copy(
        update={"clamd_url": f"tcp://127.0.0.1:{silent_port}", "scanner_required": True}
    )
    with running_api(silent, sandbox) as api, ThreadPoolExecutor(12) as pool:
        started = time.monotonic()
        probes = [pool.submit(api.client.get, "/readyz") for _ in range(10)]
        time.sleep(0.3)  # the probes are in flight
        listed = api.client.get("/v1/files", headers=api.auth())
        list_seconds = time.monotonic() - started
        answers = [probe.result() for probe in probes]
        readyz_seconds = time.monotonic() - started
    assert listed.status_code == 200
    assert list_seconds < readiness.PROBE_SECONDS
    assert readyz_seconds < readiness.PROBE_SECONDS + 3.0
    assert {answer.status_code for answer in answers} == {503}
    assert {answer.json()["checks"]["scanner"] for answer in answers} == {"failing"}


def test_readiness_is_one_probe_round_shared_by_concurrent_callers(
    settings: Settings, sandbox: Sandbox
) -> None:
    with running_api(settings, sandbox) as api:
        calls = 0
        original = api.runtime.storage.check

        def counted() -> None:
            nonlocal calls
            calls += 1
            original()

        api.client.app.state.readiness._probes["storage"] = counted  # type: ignore[attr-defined]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: api.client.get("/readyz"), range(8)))
    assert {answer.status_code for answer in answers} == {200}
    assert calls == 1


def test_a_postgresql_that_never_answers_fails_the_connection_in_seconds(
    silent_port: int,
) -> None:
    database = Database(f"postgresql://filegate@127.0.0.1:{silent_port}/filegate")
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match="timeout"):
            database.ping()
    finally:
        database.dispose()
    assert time.monotonic() - started < PG_CONNECT_TIMEOUT_S + 3


def test_close_lets_a_late_probe_hand_back_its_connection_but_not_forever() -> None:
    """A probe past its deadline may hold a database connection: closing waits for it to end
    (so the connection is back before the engine is disposed), at most one more deadline."""
    release = threading.Event()
    ended = threading.Event()

    def late() -> None:
        release.wait(30)
        ended.set()

    probes = readiness.Readiness({"database": late}, frozenset())
    report = asyncio.run(probes.report())
    assert report.checks == {"database": "failing"}  # past its deadline
    threading.Timer(0.3, release.set).start()
    probes.close()
    assert ended.is_set()

    stuck = readiness.Readiness({"database": lambda: release.wait(30)}, frozenset())
    release.clear()
    asyncio.run(stuck.report())
    started = time.monotonic()
    stuck.close()
    assert time.monotonic() - started < readiness.PROBE_SECONDS + 1.0
    release.set()
