"""Stand-in inspection runners that misbehave, for the sandbox's tests (run in its child)."""

from __future__ import annotations

import os
import time

from filegate.domain import FileState, Verdict
from filegate.inspect.base import Job, Result


def behave(job: Job) -> Result:
    return Result(Verdict(FileState.CLEAN, (), "text/plain"), os.path.basename(job.path))


def crash(job: Job) -> Result:
    os.abort()


def hang(job: Job) -> Result:
    time.sleep(3600)
    raise AssertionError("unreachable")


def spin(job: Job) -> Result:
    while True:
        pass


def hog_memory(job: Job) -> Result:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def explode(job: Job) -> Result:
    raise RuntimeError("parser bug")
