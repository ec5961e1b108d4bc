"""Prometheus metrics add up across processes: the same traffic served by one API process or
by three (each scraped on its own, as Prometheus does) gives the same sums; a separate worker
serves its own metrics; every process says which release it runs."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from filegate.db.engine import Database
from filegate.db.repository import Files
from filegate.domain import FileState
from tests.e2e.live import LiveServer, WorkerProcess, free_port, wait_for

UPLOADS = 9
# Counted per request or per file, so their sums cannot depend on which process did the work.
SUMMED = (
    "filegate_uploads_total",
    "filegate_upload_bytes_total",
    "filegate_inspections_total",
    "filegate_time_to_verdict_seconds_count",
    "filegate_http_request_seconds_count",
)
# Health checks and scrapes differ per process by design; they are not the traffic.
NOT_TRAFFIC = ("/healthz", "/metrics", "/readyz")


def scrape(url: str) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    text = httpx.get(url, timeout=10).text
    samples: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in SUMMED and sample.labels.get("route") not in NOT_TRAFFIC:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return samples


def serve_traffic(servers: list[LiveServer], key: str) -> None:
    """The same requests whatever the number of servers, spread round-robin over them."""
    for index in range(UPLOADS):
        server = servers[index % len(servers)]
        with server.client(key) as client:
            files = {"file": (f"n{index}.txt", f"note {index}\n".encode(), "text/plain")}
            assert client.post("/v1/files", files=files).status_code == 202
            assert client.get("/v1/files", params={"limit": 5}).status_code == 200
            assert client.get("/v1/files/not-an-id").status_code == 400
    database = Database(servers[0].database_url)
    try:
        wait_for(lambda: _all_clean(database), 60.0, "every upload's verdict")
    finally:
        database.dispose()
    time.sleep(0.5)  # the last job's metrics are counted just after its commit


def _all_clean(database: Database) -> bool:
    with database.session() as session:
        page = Files(session).page("metrics", state=None, before=None, limit=100)
    return len(page) == UPLOADS and all(f.state is FileState.CLEAN for f in page)


def totals(servers: list[LiveServer]) -> Counter[tuple[str, tuple[tuple[str, str], ...]]]:
    summed: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
    for server in servers:
        summed.update(scrape(f"{server.base_url}/metrics"))
    return summed


def test_sums_are_the_same_with_one_or_three_api_processes(tmp_path: Path) -> None:
    one_root, three_root = tmp_path / "one", tmp_path / "three"
    one_root.mkdir()
    three_root.mkdir()
    with LiveServer(one_root, f"sqlite:///{one_root / 'filegate.db'}", {}) as single:
        serve_traffic([single], single.create_key("metrics"))
        alone = totals([single])
    first = LiveServer(three_root, f"sqlite:///{three_root / 'filegate.db'}", {}, name="a")
    with first, first.sibling("b") as second, first.sibling("c") as third:
        trio = [first, second, third]
        serve_traffic(trio, first.create_key("metrics"))
        together = totals(trio)
        per_process = [sum(scrape(f"{s.base_url}/metrics").values()) for s in trio]
    assert alone == together
    assert all(count > 0 for count in per_process)  # the traffic really was spread
    accepted = alone[("filegate_uploads_total", (("outcome", "accepted"),))]
    assert accepted == UPLOADS


def test_a_worker_serves_its_metrics_and_every_process_its_release(tmp_path: Path) -> None:
    port = free_port()
    env = {"FILEGATE_RELEASE": "2026.12.1-test"}
    with LiveServer(tmp_path, f"sqlite:///{tmp_path / 'filegate.db'}", env) as server:
        with server.client(server.create_key("metrics")) as client:  # a job in the ledger
            files = {"file": ("n.txt", b"note\n", "text/plain")}
            assert client.post("/v1/files", files=files).status_code == 202
        api = httpx.get(f"{server.base_url}/metrics", timeout=10).text
        worker_env = {"FILEGATE_WORKER_METRICS_PORT": str(port)}
        with WorkerProcess(server, "worker", worker_env) as worker:
            worker.wait_started()
            exposed = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    release = 'release="2026.12.1-test"'
    assert "filegate_build_info{" in api
    assert release in api
    assert release in exposed
    assert "filegate_jobs{" in api  # the ledger's gauges come from API processes only
    assert "filegate_jobs{" not in exposed
