"""The benchmark harness works end to end: a tiny run against every server, every output written.

Not a timed test: it proves that the servers start, the clients drive them, every stored result
verifies by sha256, and the JSON, the markdown and the plot come out. It installs the peers into
``bench/.peers/`` first if they are not there (npm and PyPI), so it needs node and npm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
}
SERVERS = {"filegate", "tus-node", "tuspyserver", "raw"}


def _require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not on PATH; the bench peers need Node.js"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.mark.timeout(SMOKE_TIMEOUT + 60)
def test_smoke_run_writes_every_output(tmp_path: Path) -> None:
    _require_node()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--out-dir",
            str(tmp_path),
            "--docs-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (record,) = tmp_path.glob("*.json")
    results = json.loads(record.read_text())
    assert set(results["workloads"]) == WORKLOADS
    for key in ("tus_stream", "tus_chunked", "tus_concurrent"):
        servers = results["workloads"][key]["servers"]
        assert set(servers) == SERVERS
        for name, data in servers.items():
            assert len(data["runs"]) == 1, (key, name)
            assert data["summary"]["mib_s"]["median"] > 0, (key, name)
            assert data["summary"]["peak_rss_mb"]["median"] > 0, (key, name)
    concurrent = results["workloads"]["tus_concurrent"]["servers"]
    assert all(d["summary"]["errors"]["max"] == 0 for d in concurrent.values())
    clean = results["workloads"]["time_to_clean"]["servers"]["filegate"]["summary"]
    assert clean["clean_s"]["median"] > 0
    assert {name: len(points) for name, points in results["memory_curve"].items()} == dict.fromkeys(
        SERVERS, 2
    )
    assert len(results["targets"]) == 5
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "filegate / @tus/server" in markdown
    assert (tmp_path / "benchmarks.png").read_bytes().startswith(b"\x89PNG")


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
