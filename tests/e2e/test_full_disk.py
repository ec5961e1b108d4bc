"""A full disk under a live server: uploads are refused cleanly (503, nothing half-written),
DELETE still frees space, and uploads work again once there is room.

The data dir (SQLite database, queue and storage) sits on a small tmpfs this test mounts; a
machine where that is not allowed skips (or fails under CI).
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import MIB, LiveServer
from tests.support.services import require_service

DISK_MIB = 24


def _mount(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    require_service(
        f"a {DISK_MIB} MiB tmpfs (mount needs root)", str(disk), lambda p: _mount(Path(p))
    )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, timeout=30)


def _fill(path: Path) -> None:
    """Write zeros until the disk refuses. A disk the uploads left too full to create the
    file in is full already."""
    try:
        with path.open("wb") as filler:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise


def _upload(client: object, name: str, size: int) -> object:
    files = {"file": (name, b"x" * (size - 1) + b"\n", "text/plain")}
    return client.post("/v1/files", files=files)  # type: ignore[attr-defined]


def test_a_full_disk_refuses_uploads_cleanly_and_delete_frees_it(
    tmp_path: Path, small_disk: Path
) -> None:
    data_dir = small_disk / "var"
    database_url = f"sqlite:///{data_dir / 'filegate.db'}"
    with LiveServer(tmp_path, database_url, {}, data_dir=data_dir) as server:
        key = server.create_key("full")
        with server.client(key) as client:
            kept = []
            refused = None
            for index in range(DISK_MIB):
                answer = _upload(client, f"f{index}.txt", 2 * MIB)
                if answer.status_code != 202:  # type: ignore[attr-defined]
                    refused = answer
                    break
                kept.append(answer.json()["id"])  # type: ignore[attr-defined]
            assert refused is not None, "the disk never filled"
            assert refused.status_code == 503, refused.text  # type: ignore[attr-defined]
            body = refused.json()  # type: ignore[attr-defined]
            assert body["code"] in ("storage_error", "database_unavailable")
            assert "No space" not in refused.text  # type: ignore[attr-defined]
            assert "/" not in body["detail"]
            assert refused.headers["retry-after"]  # type: ignore[attr-defined]
            assert server.temp_files() == []  # nothing half-written
            # Not a byte left, not even for the database's journal.
            _fill(small_disk / "filler")
            # A tus create on the full disk: refused cleanly too.
            tus = client.post(
                "/v1/tus/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(MIB)}
            )
            assert tus.status_code == 503, tus.text
            assert tus.json()["code"] == "database_unavailable"
            # DELETE works on the full disk and frees its bytes...
            for file_id in kept[:3]:
                deleted = client.delete(f"/v1/files/{file_id}")
                assert deleted.status_code == 204, deleted.text
                assert client.get(f"/v1/files/{file_id}").status_code == 404
            # ... so uploads work again.
            assert _upload(client, "after.txt", MIB).status_code == 202  # type: ignore[attr-defined]
            assert client.get("/healthz").status_code == 200
        freed = [e for e in server.log_events() if e.get("event") == "file.deleted_on_full_disk"]
    assert freed, "the deletes never met a full database"
    print(f"disk full after {len(kept)} uploads of 2 MiB; refused with {body['code']}")
