"""`make release` on throwaway clones: it tags only when every step passed, refuses what must
not be released, and a failing step stops it with nothing changed.

The full checklist (lint, unit tests, the staging stack) is rehearsed by hand before a release
and by test_staging.py; here the release machinery itself runs for real, with the long checks
skipped where the story does not need them (the tag then says they were skipped).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of this checkout's HEAD, with a committer identity of its own."""
    root = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(root)], check=True, timeout=120)
    git(root, "config", "user.email", "release-test@example.invalid")
    git(root, "config", "user.name", "release test")
    return root


def release(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}
    env["FILEGATE_STAGING_DATABASE"] = f"filegate_release_{uuid.uuid4().hex[:8]}"
    return subprocess.run(
        [sys.executable, "-m", "tools.release", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_release_writes_the_changelog_and_the_version_and_tags(clone: Path) -> None:
    done = release(clone, "0.2.0", "--skip", "lint,unit,integration,verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok")] == [
        "preconditions",
        "changelog",
        "tag",
    ]
    changelog = (clone / "CHANGELOG.md").read_text()
    assert "## [Unreleased]\n\n## [0.2.0] - " in changelog
    assert '__version__ = "0.2.0"' in (clone / "src/filegate/__init__.py").read_text()
    assert git(clone, "tag", "--list") == "v0.2.0"
    message = git(clone, "tag", "-n9", "v0.2.0")
    assert "Released without these checks: integration, lint, unit, verify." in message
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
    # Again: the tag exists and the version does not increase.
    again = release(clone, "0.2.0", "--skip", "lint,unit,integration,verify")
    assert again.returncode == 1
    assert "tag v0.2.0 exists already" in again.stdout
    older = release(clone, "0.1.9", "--dry-run", "--skip", "lint,unit,integration,verify")
    assert older.returncode == 1
    assert "does not come after the current 0.2.0" in older.stdout


def test_a_dirty_tree_or_a_bad_version_is_refused_before_anything_runs(clone: Path) -> None:
    (clone / "README.md").write_text("edited\n")
    dirty = release(clone, "0.2.0", "--dry-run")
    assert dirty.returncode == 1
    assert "FAIL preconditions" in dirty.stdout
    assert "uncommitted changes" in dirty.stdout
    git(clone, "checkout", "README.md")
    bad = release(clone, "two", "--dry-run")
    assert (bad.returncode, "'two' is not X.Y.Z" in bad.stdout) == (1, True)


@pytest.mark.postgres
@pytest.mark.redis
def test_a_broken_staging_config_stops_the_release_before_the_tag(
    clone: Path, redis_server: str
) -> None:
    config = clone / "deploy/filegate.staging.toml"
    config.write_text(config.read_text() + '\nscanner_required = "sometimes"\n')
    git(clone, "commit", "-qam", "a broken staging config")
    changelog = (clone / "CHANGELOG.md").read_text()
    failed = release(clone, "0.2.0", "--skip", "lint,unit")
    print(failed.stdout)
    assert failed.returncode == 1
    assert "FAIL staging up" in failed.stdout
    assert "nothing was tagged" in failed.stdout
    assert git(clone, "tag", "--list") == ""
    assert (clone / "CHANGELOG.md").read_text() == changelog
