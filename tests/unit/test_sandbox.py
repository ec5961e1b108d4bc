"""The inspection sandbox turns crashes, hangs and memory blow-ups into findings."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
from pathlib import Path

import pytest

from filegate.domain import FileState, InspectionPolicy
from filegate.inspect.base import SandboxRequest
from filegate.inspect.sandbox import InspectionInterrupted, Sandbox, SandboxLimits
from tests.support.samples import png

POLICY = InspectionPolicy(
    name="t", max_size=1 << 20, extensions=frozenset({"png"}), types=frozenset({"image/png"})
)
LIMITS = SandboxLimits(memory_bytes=512 * 1024 * 1024, cpu_seconds=2, wall_seconds=4.0)


def job(tmp_path: Path) -> SandboxRequest:
    path = tmp_path / "a.png"
    path.write_bytes(png())
    return SandboxRequest(str(path), "a.png", None, path.stat().st_size, POLICY)


@pytest.mark.parametrize(
    ("runner", "code"),
    [
        pytest.param("crash", "inspection_failed", id="abort"),
        pytest.param("explode", "inspection_failed", id="exception"),
        pytest.param("hog_memory", "inspection_failed", id="memory"),
        pytest.param("spin", "inspection_timeout", id="cpu"),
        pytest.param("hang", "inspection_timeout", id="wall-clock"),
    ],
)
def test_misbehaving_inspection_is_a_rejecting_finding(
    tmp_path: Path, runner: str, code: str
) -> None:
    sandbox = Sandbox(LIMITS, runner=f"tests.support.hostile:{runner}")
    try:
        started = time.monotonic()
        result = sandbox.run(job(tmp_path))
        elapsed = time.monotonic() - started
        assert result.verdict.state is FileState.REJECTED
        assert [f.code for f in result.verdict.findings] == [code]
        assert elapsed < 30
        # The sandbox recovers: the next job gets a fresh child.
        sandbox.runner = "tests.support.hostile:behave"
        sandbox.close()
        assert sandbox.run(job(tmp_path)).verdict.state is FileState.CLEAN
    finally:
        sandbox.close()


def test_a_child_stopped_from_outside_is_no_verdict(tmp_path: Path) -> None:
    """A worker shutting down mid-job (its child SIGTERMed) must not reject a clean file."""
    sandbox = Sandbox(LIMITS, runner="tests.support.hostile:stopped")
    try:
        with pytest.raises(InspectionInterrupted, match="signal 15"):
            sandbox.run(job(tmp_path))
        sandbox.runner = "tests.support.hostile:behave"
        assert sandbox.run(job(tmp_path)).verdict.state is FileState.CLEAN
    finally:
        sandbox.close()


def test_children_inspect_at_the_same_time(tmp_path: Path) -> None:
    """Two files, two children: neither waits for the other (one child would deadlock)."""
    sandbox = Sandbox(LIMITS, runner="tests.support.hostile:rendezvous", processes=2)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(sandbox.run, [job(tmp_path), job(tmp_path)]))
        assert [r.verdict.state for r in results] == [FileState.CLEAN, FileState.CLEAN]
        assert len({r.display_name for r in results}) == 2  # two child pids
    finally:
        sandbox.close()


def test_a_crash_replaces_only_its_own_child(tmp_path: Path) -> None:
    sandbox = Sandbox(LIMITS, runner="tests.support.hostile:as_named", processes=2)
    behave = dataclasses.replace(job(tmp_path), original_name="behave.png")
    try:
        sandbox.start()
        before = sandbox.pids()
        assert len(before) == 2
        crash = dataclasses.replace(behave, original_name="crash.png")
        assert [f.code for f in sandbox.run(crash).verdict.findings] == ["inspection_failed"]
        survivors = sandbox.pids()
        assert len(survivors) == 1
        assert survivors[0] in before
        assert sandbox.run(behave).verdict.state is FileState.CLEAN
        after = sandbox.pids()
        assert len(after) == 2
        assert survivors[0] in after
    finally:
        sandbox.close()


def test_real_pipeline_runs_in_the_child(tmp_path: Path, sandbox: Sandbox) -> None:
    result = sandbox.run(job(tmp_path))
    assert result.verdict.state is FileState.CLEAN
    assert result.verdict.detected_type == "image/png"
