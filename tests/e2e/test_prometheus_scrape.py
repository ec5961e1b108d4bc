"""A real Prometheus scrapes a live filegate: two API processes and a separate worker on one
database, each its own target, as docs/operations.md tells operators to scrape them.

Proves, on the numbers Prometheus itself stores and computes:

- all three targets are up, and every process reports the same single release;
- counters add up across processes: N uploads spread over both API processes are N accepted
  uploads, and the worker's N inspections are N, counted by the worker alone;
- job metrics carry the job kind as ``kind`` and keep ``job`` for the scrape job (a ``job``
  label of ours would reach Prometheus renamed ``exported_job``, as it did at first);
- the recording and alert rules of deploy/prometheus load and evaluate without error;
- every query of deploy/grafana/filegate.json evaluates without error, and the panels that
  must show something after this traffic do.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx2 as httpx
import pytest

from filegate.db import migrate
from tests.e2e.live import HOST, LiveServer, WorkerProcess, free_port, inspected, wait_for
from tests.support.grafana import (
    RULES,
    as_promql,
    dashboard_queries,
    load_dashboard,
)
from tests.support.services import require_service

UPLOADS = 6
RELEASE = "2026.12.2-scrape"
SCRAPE = "filegate.*"
READY_TIMEOUT = 20.0
QUERY_TIMEOUT = 5.0
# Panels (and the deploy annotation, and the instance variable) that must show data once a
# few uploads went through and readiness was probed; the others may rightly be empty here
# (no 5xx, no webhooks, no rejections, no failed or waiting jobs).
MUST_SHOW = (
    '"Processes answering scrapes"',
    '"Dependencies reached by every API process"',
    '"Storage free (fullest filesystem)"',
    '"Time to verdict p95 by profile" query A',
    '"Job runs by job and outcome"',
    '"Processes by release"',
    '"Direct upload p95 by release"',
    '"Uploads by outcome"',
    '"Bytes uploaded by channel"',
    'variable "instance"',
    'annotation "Deploys"',
)


def prometheus_binary() -> str:
    """The ``prometheus`` server (Debian: prometheus); skip without it, fail under CI."""

    def present(_: str) -> None:
        if shutil.which("prometheus") is None:
            raise FileNotFoundError("the prometheus server is not installed (Debian: prometheus)")

    require_service("Prometheus", "prometheus", present)
    return shutil.which("prometheus") or "prometheus"


class Prometheus:
    """``prometheus`` on a free loopback port, scraping ``jobs`` (scrape job: targets) every
    second and evaluating filegate's rules every second; a context manager."""

    def __init__(self, root: Path, jobs: Mapping[str, Sequence[str]]) -> None:
        self.root = root
        self.config = root / "prometheus.yml"
        self.log_path = root / "prometheus.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        config = {  # JSON is YAML
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]}
                for job, targets in jobs.items()
            ],
        }
        self.config.write_text(json.dumps(config, indent=2))

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Prometheus:
        binary = prometheus_binary()
        for _ in range(3):  # another process can take the free port before prometheus binds
            self.port = free_port()
            self._log = self.log_path.open("ab")
            self._process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.root / 'tsdb'}",
                    f"--web.listen-address={HOST}:{self.port}",
                    "--log.level=warn",
                ],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if self._wait_ready():
                return self
            self.stop()
            if "address already in use" not in self.log_tail():
                break
        raise RuntimeError(f"prometheus did not become ready; log tail:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/-/ready", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=QUERY_TIMEOUT)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now (or at ``at``); raises on any error
        Prometheus gives."""
        data = self.api("query", query=expr, **({} if at is None else {"time": f"{at:.3f}"}))
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single number ``expr`` gives, or None if it gives no series."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def wait_scraped_since(self, moment: float, targets: int, timeout: float = 15.0) -> float:
        """Until every filegate target was scraped, successfully, by a scrape begun after
        ``moment`` (the time.time() of this machine, which Prometheus shares); returns a time
        at which a query sees those scrapes, whatever the scrapes after them do (on a loaded
        machine one can time out, and its target's gauges go stale until the next)."""
        expr = f'timestamp(up{{job=~"{SCRAPE}"}} == 1) > {moment:.3f}'
        scraped: list[dict[str, Any]] = []

        def all_scraped() -> bool:
            scraped[:] = self.query(expr)
            return len(scraped) == targets

        wait_for(all_scraped, timeout, f"a scrape after {moment}")
        return max(float(r["value"][1]) for r in scraped)

    def __enter__(self) -> Prometheus:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def upload_everywhere(servers: Sequence[LiveServer], key: str, count: int, first: int = 0) -> None:
    """``count`` small text files, round-robin over ``servers``; returns once each is clean."""
    made: list[tuple[LiveServer, str]] = []
    for index in range(first, first + count):
        server = servers[index % len(servers)]
        with server.client(key) as client:
            files = {"file": (f"n{index}.txt", f"note {index}\n".encode(), "text/plain")}
            response = client.post("/v1/files", files=files)
            assert response.status_code == 202, response.text
            made.append((server, response.json()["id"]))
    for server, file_id in made:
        with server.client(key) as client:
            assert inspected(client, file_id, timeout=30.0)["state"] == "clean"


@pytest.mark.timeout(120)
def test_prometheus_scrapes_two_api_processes_and_a_worker(tmp_path: Path) -> None:
    prometheus_binary()  # skip (or fail under CI) before starting anything
    database_url = f"sqlite:///{tmp_path / 'filegate.db'}"
    env = {"FILEGATE_RELEASE": RELEASE}
    first = LiveServer(tmp_path, database_url, env, name="api-a", embedded_worker=False)
    second = first.sibling("api-b")
    worker_port = free_port()
    worker = WorkerProcess(first, "worker", {"FILEGATE_WORKER_METRICS_PORT": str(worker_port)})
    with started_together(database_url, [first, second], worker):
        jobs = {
            "filegate": [f"{HOST}:{first.port}", f"{HOST}:{second.port}"],
            "filegate-worker": [f"{HOST}:{worker_port}"],
        }
        with Prometheus(tmp_path, jobs) as prometheus:
            key = first.create_key("scrape")
            # One file first, seen by Prometheus, then the rest: a rate needs the series to
            # grow between two scrapes, and a series born with its final count never does.
            upload_everywhere([first, second], key, 1)
            wait_for(
                lambda: (prometheus.value("sum(filegate_time_to_verdict_seconds_count)") or 0) >= 1,
                15.0,
                "Prometheus to see the first verdict",
            )
            upload_everywhere([first, second], key, UPLOADS - 1, first=1)
            for server in (first, second):  # readiness feeds filegate_dependency_up
                assert httpx.get(f"{server.base_url}/readyz", timeout=10).status_code == 200
            # A worker counts an inspection just after its verdict commits: wait for the last.
            wait_for(
                lambda: (prometheus.value("sum(filegate_inspections_total)") or 0) >= UPLOADS,
                15.0,
                "Prometheus to see every inspection",
            )
            prometheus.wait_scraped_since(time.time(), targets=3)
            check_what_prometheus_stores(prometheus)
            check_the_rules(prometheus)
            check_the_dashboard(prometheus, prometheus.wait_scraped_since(time.time(), 3))


@contextmanager
def started_together(
    database_url: str, servers: Sequence[LiveServer], worker: WorkerProcess
) -> Iterator[None]:
    """The worker importing while the servers start (each process spends seconds importing;
    the servers one at a time, as their start migrates in this process and alembic is not
    thread-safe); all stopped on the way out, whatever happened."""
    migrate.upgrade(database_url)  # before the worker's first look at the ledger
    with ExitStack() as stack:
        stack.callback(worker.stop)
        worker.start()
        for server in servers:
            stack.enter_context(server)
        worker.wait_started()
        yield


def check_what_prometheus_stores(prometheus: Prometheus) -> None:
    # Scrapes are eventually consistent: wait (briefly) for each sum rather than racing one.
    for expr, wanted in (
        (f'count(up{{job=~"{SCRAPE}"}} == 1)', 3),
        ('sum(filegate_uploads_total{outcome="accepted"})', UPLOADS),
        ("sum(filegate_inspections_total)", UPLOADS),
    ):
        wait_for(lambda e=expr, w=wanted: prometheus.value(e) == w, 10.0, f"{expr} == {wanted}")
    inspecting = prometheus.query("sum by (job) (filegate_inspections_total)")
    assert [r["metric"] for r in inspecting] == [{"job": "filegate-worker"}]
    releases = prometheus.query("count by (release) (filegate_build_info)")
    assert [(r["metric"], r["value"][1]) for r in releases] == [({"release": RELEASE}, "3")]
    # The job kind is `kind`: `job` is the scrape job's, and stays so.
    by_kind = prometheus.query("sum by (kind) (filegate_job_runs_total)")
    assert "inspect" in {r["metric"].get("kind") for r in by_kind}
    by_job = prometheus.query("sum by (job) (filegate_job_runs_total)")
    assert {r["metric"]["job"] for r in by_job} == {"filegate-worker"}


def check_the_rules(prometheus: Prometheus) -> None:
    """Every rule of deploy/prometheus/filegate.rules.yml evaluated without an error, and no
    alert set off by a healthy install."""

    def rules() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    wait_for(
        lambda: bool(rules()) and all(r["health"] != "unknown" for r in rules()),
        10.0,
        "every rule's first evaluation",
    )
    failing = [(r["name"], r.get("lastError")) for r in rules() if r["health"] != "ok"]
    assert failing == []
    # A healthy install sets off no alert, not even as pending; the disk this test runs on
    # may really be nearly full, though.
    disk = shutil.disk_usage(prometheus.root)
    expected = {"FilegateStorageNearlyFull"} if disk.free / disk.total < 0.1 else set()
    active = {r["name"] for r in rules() if r["type"] == "alerting" and r["state"] != "inactive"}
    assert active <= expected


def check_the_dashboard(prometheus: Prometheus, at: float) -> None:
    """Every panel that must show something does, evaluated at ``at``: just after a scrape of
    every target succeeded."""
    results = {
        query.where: prometheus.query(as_promql(query.expr, interval="1m"), at=at)
        for query in dashboard_queries(load_dashboard())
    }
    for wanted in MUST_SHOW:
        matching = [where for where in results if wanted in where]
        assert matching, f"no dashboard query matches {wanted}"
        for where in matching:
            assert results[where], f"{where} shows nothing"
    instances = {r["metric"]["instance"] for r in results['variable "instance"']}
    assert len(instances) == 3
