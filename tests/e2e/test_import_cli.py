"""``filegate import`` as real processes: killed half-way with SIGKILL, run again, run once more.

The end state must be every file imported exactly once, and the last run must say it found
nothing new.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from filegate.domain import Area
from filegate.storage.local import LocalStorage
from tests.e2e.live import STOP_TIMEOUT, LiveServer, wait_for

FILES = 500
TENANT = "t1"
# Short, so the jobs the killed run held are handed to the next run as soon as it starts.
LEASE_SECONDS = 2
# Generous for a loaded 2-core machine: every run starts a fresh interpreter and inspector.
RUN_TIMEOUT = 90.0


@pytest.fixture
def install(tmp_path: Path) -> Iterator[LiveServer]:
    """A migrated SQLite installation that is never served: its environment and ``run_cli``."""
    data_dir = tmp_path / "var"
    env = {"FILEGATE_JOB_LEASE_SECONDS": str(LEASE_SECONDS)}
    server = LiveServer(tmp_path, f"sqlite:///{data_dir / 'filegate.db'}", env)
    server.run_cli("migrate")
    yield server
    server.stop()


def make_notes(root: Path) -> dict[str, str]:
    """``FILES`` small, distinct text files in nested folders; returns path -> sha256."""
    digests = {}
    for i in range(FILES):
        path = root / f"batch-{i // 100}" / f"note-{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"note {i}\n".encode() * 3 + b"the quick brown fox jumps over the lazy dog\n"
        path.write_bytes(data)
        digests[str(path.resolve())] = hashlib.sha256(data).hexdigest()
    return digests


def query(install: LiveServer, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(install.data_dir / "filegate.db", timeout=10)) as connection:
        return connection.execute(sql).fetchall()


def journal_size(install: LiveServer) -> int:
    return int(query(install, "SELECT count(*) FROM imports")[0][0])


def import_command(source: Path) -> list[str]:
    return [sys.executable, "-m", "filegate", "import", str(source), "--tenant", TENANT]


def run_import(install: LiveServer, source: Path) -> tuple[dict[str, Any], str]:
    """Run to completion; returns the JSON counts (the last line of stdout) and stdout."""
    started = time.monotonic()
    result = subprocess.run(
        import_command(source),
        env=install.env,
        cwd=install.root,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-3000:]}"
    counts: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    print(f"import run: {time.monotonic() - started:.1f} s, {counts}")
    return counts, result.stdout


def kill_half_way(install: LiveServer, source: Path) -> int:
    """Start an import, SIGKILL it once the journal holds half the files; returns its size."""
    with (install.root / "killed-run.log").open("wb") as log:
        process = subprocess.Popen(
            import_command(source), env=install.env, cwd=install.root, stdout=log, stderr=log
        )
        try:
            wait_for(
                lambda: journal_size(install) >= FILES // 2 or process.poll() is not None,
                RUN_TIMEOUT,
                "the first run to journal half the files",
            )
        finally:
            process.kill()
            process.wait(STOP_TIMEOUT)
    assert process.returncode == -9, "the first run ended before it could be killed"
    return journal_size(install)


def finish_leftovers(install: LiveServer) -> None:
    """Inspections the killed run had queued or held are finished by a worker, as deployed."""
    if all_clean(install):
        return
    with (install.root / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "filegate", "worker"],
            env=install.env,
            cwd=install.root,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for(lambda: all_clean(install), RUN_TIMEOUT, "every file to be inspected")
        finally:
            worker.terminate()
            worker.wait(STOP_TIMEOUT)


def all_clean(install: LiveServer) -> bool:
    return query(install, "SELECT count(*) FROM files WHERE state != 'clean'")[0][0] == 0


def test_an_import_killed_half_way_ends_with_every_file_imported_once(
    install: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "notes"
    digests = make_notes(source)

    killed_at = kill_half_way(install, source)
    # The jobs the killed run held are stale once their lease is over; the next run takes them.
    time.sleep(LEASE_SECONDS)
    second, _ = run_import(install, source)
    third, third_stdout = run_import(install, source)

    assert FILES // 2 <= killed_at < FILES
    assert (second["skipped"], second["imported"]) == (killed_at, FILES - killed_at)
    assert (second["failed"], second["rejected"], second["still_waiting"]) == (0, 0, 0)
    assert second["clean"] == FILES - killed_at
    assert (third["imported"], third["skipped"], third["failed"]) == (0, FILES, 0)
    assert third_stdout.splitlines()[0] == f"imported 0 new files ({FILES} already imported)"

    journal = dict(query(install, "SELECT source, sha256 FROM imports"))
    assert journal == digests, "one journal row per source, with the source's sha256"
    files = query(
        install,
        "SELECT f.id, f.sha256, f.tenant FROM files f JOIN imports i ON i.file_id = f.id",
    )
    assert len(files) == FILES
    assert query(install, "SELECT count(*) FROM files")[0][0] == FILES
    assert {tenant for _, _, tenant in files} == {TENANT}

    finish_leftovers(install)
    assert all_clean(install)
    storage = LocalStorage(install.storage_dir)
    stored = set(storage.keys(Area.CLEAN)) | set(storage.keys(Area.QUARANTINE))
    # The killed run may have left one object whose transaction never committed: an orphan.
    assert len(stored - {file_id for file_id, _, _ in files}) <= 1
    reconcile = install.sibling("reconcile", {"FILEGATE_RECONCILE_GRACE_SECONDS": "0"})
    reconcile.run_cli("jobs", "run", "reconcile")
    stored = set(storage.keys(Area.CLEAN)) | set(storage.keys(Area.QUARANTINE))
    assert stored == {file_id for file_id, _, _ in files}
    assert set(storage.keys(Area.QUARANTINE)) == set()
