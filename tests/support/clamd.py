"""A real clamd for the tests, with a signature database written here (no downloads)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filegate.inspect import antivirus
from tests.support.services import require_service, stop_process

# The EICAR test string: every scanner treats it as a virus; it does nothing.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Filegate.Test.EICAR"
START_SECONDS = 60


def _binary(_: str) -> None:
    if shutil.which("clamd") is None:
        raise FileNotFoundError("clamd is not installed (Debian: clamav-daemon)")


@contextmanager
def running_clamd(workdir: Path) -> Iterator[antivirus.ScannerConfig]:
    """Start clamd on a unix socket in ``workdir`` with an .ndb body signature for EICAR."""
    require_service("clamd", "clamd", _binary)
    database = workdir / "db"
    database.mkdir(parents=True)
    (database / "filegate-test.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
    socket = workdir / "clamd.sock"
    config = workdir / "clamd.conf"
    config.write_text(
        f"LocalSocket {socket}\nDatabaseDirectory {database}\nForeground yes\n"
        f"LogFile {workdir / 'clamd.log'}\nBytecode no\n"
    )
    log = (workdir / "clamd.out").open("wb")
    process = subprocess.Popen(["clamd", "-c", str(config)], stdout=log, stderr=log)
    scanner = antivirus.ScannerConfig(f"unix://{socket}", timeout=30)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not antivirus.ping(scanner):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"clamd did not start: {(workdir / 'clamd.out').read_text()}")
            time.sleep(0.2)
        yield scanner
    finally:
        stop_process(process)
        log.close()
