"""Node packages the end-to-end tests drive (tus-js-client, playwright-core), installed from
their lock files into the test's own directory."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.services import in_ci

NPM_TIMEOUT = 300.0


def node_with_packages(package_dir: Path, needed_for: str) -> str:
    """The node executable, with ``package_dir/node_modules`` installed from its
    ``package-lock.json`` (again only when the lock changed); skips without node on a laptop,
    fails under CI."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable(f"node and npm are needed to {needed_for}, and are not on PATH")
    if _stale(package_dir):
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            unavailable(f"npm ci failed in {package_dir}:\n{result.stdout}\n{result.stderr}")
    return node


def _stale(package_dir: Path) -> bool:
    # npm writes node_modules/.package-lock.json on every install: older than the lock is stale.
    installed = package_dir / "node_modules" / ".package-lock.json"
    lock = package_dir / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


def unavailable(reason: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so a missing tool is a failure)")
    pytest.skip(reason)


def run_script(
    node: str, script: Path, args: Sequence[str], *, timeout: float, server_log: Callable[[], str]
) -> Any:
    """Run a browser script here (``tests/e2e/browser/*.mjs``, in its own directory) and
    return the JSON on the last line it printed; a script that exits non-zero fails the test
    with its output and the server's log."""
    result = subprocess.run(
        [node, str(script), *args],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"{script.name} exited {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
        f"stderr:\n{result.stderr[-6000:]}\nserver log:\n{server_log()}"
    )
    return json.loads(result.stdout.splitlines()[-1])
