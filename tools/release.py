"""``make release VERSION=X.Y.Z [DRY_RUN=1]``: the release checklist, in order, stopping at
the first failure, each step's result and time printed (docs/release.md).

1. preconditions: a clean tree, no tag ``vX.Y.Z`` yet, a version above the current one, and
   something under CHANGELOG's Unreleased;
2. lint: ruff, mypy, hadolint, the compose schema (``make lint typecheck``);
3. unit tests (``tests/unit``, two workers);
4. the staging stack up (``tools/staging.py``), then the integration check against it;
5. verify staging config (``filegate verify`` on the stack), then the stack down;
6. CHANGELOG's Unreleased becomes ``X.Y.Z`` with today's date, the version is set in its one
   place (``src/filegate/__init__.py``), a commit, and an annotated tag ``vX.Y.Z``.

``--dry-run`` runs 1-5 and changes nothing. ``--skip`` leaves out checks when rehearsing this
machinery itself (its tests); the tag's message names every skipped step, so a release made
that way says so forever.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSION_FILE = Path("src/filegate/__init__.py")
CHANGELOG = Path("CHANGELOG.md")
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
CURRENT_RE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
UNRELEASED = "## [Unreleased]"
CHECKS = ("lint", "unit", "integration", "verify")
STEP_TIMEOUT = 45 * 60


class StepFailed(Exception):
    pass


@dataclass
class Release:
    version: str
    root: Path
    dry_run: bool = False
    skip: frozenset[str] = frozenset()
    workdir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir = self.root / "var" / "release-staging"

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        steps: list[tuple[str, Callable[[], str]]] = [("preconditions", self.preconditions)]
        if "lint" not in self.skip:
            steps.append(
                ("lint", lambda: self._run("make", "--no-print-directory", "lint", "typecheck"))
            )
        if "unit" not in self.skip:
            steps.append(
                (
                    "unit tests",
                    lambda: self._run(
                        str(self.root / ".venv/bin/pytest"),
                        "tests/unit",
                        "-q",
                        "-n",
                        "2",
                        "--dist",
                        "loadfile",
                        "-p",
                        "no:cacheprovider",
                    ),
                )
            )
        if not {"integration", "verify"} <= self.skip:
            steps.append(("staging up", lambda: self.staging("up")))
            if "integration" not in self.skip:
                steps.append(("integration check", lambda: self.staging("check")))
            if "verify" not in self.skip:
                steps.append(("verify staging config", lambda: self.staging("verify")))
            steps.append(("staging down", lambda: self.staging("down")))
        if not self.dry_run:
            steps.append(("changelog and version", self.write_release))
            steps.append(("tag", self.tag))
        return steps

    # --- the steps ---------------------------------------------------------------------------

    def preconditions(self) -> str:
        if not VERSION_RE.match(self.version):
            raise StepFailed(f"{self.version!r} is not X.Y.Z")
        dirty = self._git("status", "--porcelain", "--untracked-files=no")
        if dirty:
            raise StepFailed(f"the tree has uncommitted changes:\n{dirty}")
        if self._git("tag", "--list", f"v{self.version}"):
            raise StepFailed(f"tag v{self.version} exists already")
        current = current_version(self.root)
        if not newer(self.version, current):
            raise StepFailed(f"{self.version} does not come after the current {current}")
        notes = unreleased_notes((self.root / CHANGELOG).read_text())
        if not notes.strip():
            raise StepFailed("CHANGELOG.md has nothing under [Unreleased]")
        return f"clean tree, {current} -> {self.version}, {len(notes.splitlines())} lines of notes"

    def write_release(self) -> str:
        today = datetime.now(UTC).date().isoformat()
        changelog = self.root / CHANGELOG
        changelog.write_text(
            changelog.read_text().replace(
                UNRELEASED, f"{UNRELEASED}\n\n## [{self.version}] - {today}", 1
            )
        )
        version_file = self.root / VERSION_FILE
        version_file.write_text(
            CURRENT_RE.sub(f'__version__ = "{self.version}"', version_file.read_text(), count=1)
        )
        self._git("add", str(CHANGELOG), str(VERSION_FILE))
        self._git("commit", "-q", "-m", f"Release {self.version}")
        return f"CHANGELOG section [{self.version}] - {today}; __version__ = {self.version!r}"

    def tag(self) -> str:
        message = f"filegate {self.version}"
        if self.skip:
            message += f"\n\nReleased without these checks: {', '.join(sorted(self.skip))}."
        self._git("tag", "-a", f"v{self.version}", "-m", message)
        return f"v{self.version}" + (
            f" (skipped: {', '.join(sorted(self.skip))})" if self.skip else ""
        )

    # --- helpers -----------------------------------------------------------------------------

    def staging(self, command: str) -> str:
        return self._run(
            sys.executable, "-m", "tools.staging", command, "--workdir", str(self.workdir)
        )

    def _run(self, *argv: str) -> str:
        result = subprocess.run(  # noqa: S603 - argv built here, no shell
            argv,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise StepFailed(
                f"{' '.join(argv[:3])}... exited {result.returncode}:\n{output[-3000:]}"
            )
        lines = output.splitlines()
        return lines[-1] if lines else "done"

    def _git(self, *args: str) -> str:
        result = subprocess.run(  # noqa: S603 - argv built here, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StepFailed(f"git {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout.strip()


def current_version(root: Path) -> str:
    found = CURRENT_RE.search((root / VERSION_FILE).read_text())
    if found is None:
        raise StepFailed(f"no __version__ in {VERSION_FILE}")
    return found.group(1)


def _release_tuple(version: str) -> tuple[int, int, int, int]:
    """(major, minor, patch, final?): 0.2.0.dev0 sorts below 0.2.0."""
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)(.*)$", version)
    if match is None:
        raise StepFailed(f"cannot read version {version!r}")
    major, minor, patch, rest = match.groups()
    return int(major), int(minor), int(patch), 0 if rest else 1


def newer(candidate: str, current: str) -> bool:
    return _release_tuple(candidate) > _release_tuple(current)


def unreleased_notes(changelog: str) -> str:
    start = changelog.find(UNRELEASED)
    if start < 0:
        return ""
    body = changelog[start + len(UNRELEASED) :]
    following = re.search(r"^## \[", body, re.MULTILINE)
    return body[: following.start()] if following else body


def run(release: Release) -> int:
    mode = "dry run: nothing is changed" if release.dry_run else "for real"
    print(f"release {release.version} ({mode})", flush=True)
    started = time.monotonic()
    staged = False
    steps = release.steps()
    for name, step in steps:
        step_started = time.monotonic()
        try:
            detail = step()
        except (StepFailed, subprocess.TimeoutExpired) as exc:
            print(f"FAIL {name} [{time.monotonic() - step_started:.1f}s]\n{exc}", flush=True)
            if staged and name != "staging down":
                release.staging("down")  # never leave the stack running
            print(f"stopped at {name!r}: nothing was tagged", flush=True)
            return 1
        staged = (staged or name == "staging up") and name != "staging down"
        print(f"ok   {name} [{time.monotonic() - step_started:.1f}s]: {detail}", flush=True)
    print(f"done in {time.monotonic() - started:.0f}s", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release", description=__doc__)
    parser.add_argument("version", help="X.Y.Z, above the current version")
    parser.add_argument("--dry-run", action="store_true", help="run the checks, change nothing")
    parser.add_argument(
        "--skip",
        default="",
        help=f"comma-separated checks to leave out ({', '.join(CHECKS)}); named in the tag",
    )
    args = parser.parse_args(argv)
    skip = frozenset(s for s in args.skip.split(",") if s)
    unknown = skip - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks to skip: {', '.join(sorted(unknown))}")
    return run(Release(args.version, REPO, dry_run=args.dry_run, skip=skip))


if __name__ == "__main__":
    sys.exit(main())
