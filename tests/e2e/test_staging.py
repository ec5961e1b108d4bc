"""`make staging` on this machine: the compose topology as local processes comes up, passes the
release checklist's integration check and `filegate verify`, and `make staging-down` leaves no
process and no port behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.services import require_service

REPO = Path(__file__).resolve().parents[2]


def _nginx(_: str) -> None:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        raise FileNotFoundError("nginx is not installed (Debian: nginx)")


def staging(workdir: Path, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.staging", command, "--workdir", str(workdir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.postgres
@pytest.mark.redis
def test_the_stack_comes_up_passes_the_checks_and_goes_away_completely(
    tmp_path: Path, redis_server: str
) -> None:
    require_service("nginx", "nginx", _nginx)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")},
        "FILEGATE_STAGING_DATABASE": f"filegate_staging_{uuid.uuid4().hex[:8]}",
        "FILEGATE_STAGING_REDIS": redis_server.rsplit("/", 1)[0] + "/10",
    }
    workdir = tmp_path / "staging"
    started = staging(workdir, "up", env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        checked = staging(workdir, "check", env)
        print(checked.stdout)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert [line.split(":")[0] for line in checked.stdout.splitlines()] == [
            "ok   direct upload",
            "ok   tus across APIs",
            "ok   EICAR rejected",
            "ok   webhook",
        ]
        verified = staging(workdir, "verify", env)
        print(verified.stdout)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "FAIL" not in verified.stdout
    finally:
        stopped = staging(workdir, "down", env)
    print(stopped.stdout)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "no process and no port of the stack is left" in stopped.stdout
