"""Under attack and under a minute of steady load, a live server stays fast where it must
(``/healthz``) and its memory and open files stay bounded and flat."""

from __future__ import annotations

import multiprocessing
import os
import random
import statistics
import threading
import time
from pathlib import Path

import httpx2 as httpx

from tests.e2e.live import LiveServer, tus_create
from tests.support import attackers

# The bounds: /healthz p99 under 100 ms and API peak RSS under 300 MB under attack.
HEALTHZ_P99_MS = 100.0
PEAK_RSS_KB = 300 * 1024
ATTACK_SECONDS = 8.0
SOAK_SECONDS = 60.0
SOAK_CLIENTS = 16
# After warm-up, a minute of traffic may move RSS by allocator noise, not by a leak.
RSS_DRIFT_KB = 30 * 1024
FD_DRIFT = 8


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def test_attacks_leave_healthz_fast_and_memory_bounded(tmp_path: Path) -> None:
    env = {"FILEGATE_REQUEST_HEAD_TIMEOUT": "2", "FILEGATE_UPLOAD_READ_TIMEOUT": "2"}
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
        key = server.create_key("victim")
        context = multiprocessing.get_context("spawn")
        attack = context.Process(
            target=attackers.all_at_once, args=(server.port, key, ATTACK_SECONDS)
        )
        samples: list[float] = []
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            client.get("/healthz")
            attack.start()
            while attack.is_alive():
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                samples.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)
            attack.join()
        peak = server.rss_peak_kb()
        still_open = _open_fds(server.pid)
    p99 = _p99(samples)
    print(
        f"under attack: {len(samples)} /healthz, p50 {statistics.median(samples):.1f} ms, "
        f"p99 {p99:.1f} ms; peak RSS {peak // 1024} MB; {still_open} fds open after"
    )
    assert p99 < HEALTHZ_P99_MS
    assert peak < PEAK_RSS_KB


def _client_loop(server: LiveServer, key: str, until: float, errors: list[str]) -> None:
    rng = random.Random(key)
    with server.client(key) as client:
        while time.monotonic() < until:
            choice = rng.random()
            try:
                if choice < 0.4:
                    files = {
                        "file": ("note.txt", b"soak %d\n" % rng.randrange(10**9), "text/plain")
                    }
                    answer = client.post("/v1/files", files=files)
                    expected = {202}
                elif choice < 0.6:
                    url = tus_create(client, 1000, filename="part.txt")
                    answer = client.patch(
                        url,
                        headers={
                            "Tus-Resumable": "1.0.0",
                            "Upload-Offset": "0",
                            "Content-Type": "application/offset+octet-stream",
                        },
                        content=b"t" * 1000,
                    )
                    expected = {204}
                else:
                    answer = client.get("/v1/files", params={"limit": 20})
                    expected = {200}
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            if answer.status_code not in expected:
                errors.append(f"{answer.status_code} {answer.text[:200]}")


def test_a_minute_at_16_clients_leaves_memory_and_open_files_flat(tmp_path: Path) -> None:
    env = {
        "FILEGATE_QUOTAS__UPLOADS_PER_MINUTE": "0",
        "FILEGATE_QUOTAS__REQUESTS_PER_SECOND": "0",
    }
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
        keys = [server.create_key(f"soak-{n % 4}") for n in range(SOAK_CLIENTS)]
        errors: list[str] = []
        warm_until = time.monotonic() + 10
        _run_clients(server, keys, warm_until, errors)  # warm-up: caches, pools, the sandbox
        time.sleep(1)
        rss_before, fds_before = server.rss_kb(), _open_fds(server.pid)
        _run_clients(server, keys, time.monotonic() + SOAK_SECONDS, errors)
        time.sleep(1)
        rss_after, fds_after = server.rss_kb(), _open_fds(server.pid)
        peak = server.rss_peak_kb()
    print(
        f"soak {SOAK_SECONDS:.0f} s x {SOAK_CLIENTS} clients: RSS {rss_before // 1024} -> "
        f"{rss_after // 1024} MB (peak {peak // 1024} MB), fds {fds_before} -> {fds_after}, "
        f"{len(errors)} errors"
    )
    assert errors == []
    assert rss_after - rss_before < RSS_DRIFT_KB
    assert abs(fds_after - fds_before) <= FD_DRIFT
    assert peak < PEAK_RSS_KB


def _run_clients(server: LiveServer, keys: list[str], until: float, errors: list[str]) -> None:
    threads = [
        threading.Thread(target=_client_loop, args=(server, key, until, errors)) for key in keys
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
