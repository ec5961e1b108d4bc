"""Stand-in inspection runners that misbehave, for the sandbox's tests (run in its child)."""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

from filegate.domain import FileState, Verdict
from filegate.inspect.base import Inspection, SandboxRequest


def behave(job: SandboxRequest) -> Inspection:
    return Inspection(Verdict(FileState.CLEAN, (), "text/plain"), os.path.basename(job.path))


def crash(job: SandboxRequest) -> Inspection:
    os.abort()


def hang(job: SandboxRequest) -> Inspection:
    time.sleep(3600)
    raise AssertionError("unreachable")


def spin(job: SandboxRequest) -> Inspection:
    while True:
        pass


def hog_memory(job: SandboxRequest) -> Inspection:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def explode(job: SandboxRequest) -> Inspection:
    raise RuntimeError("parser bug")


def stopped(job: SandboxRequest) -> Inspection:
    """What a shutdown looks like from the child: SIGTERM mid-job, from outside."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(3600)
    raise AssertionError("unreachable")


def rendezvous(job: SandboxRequest) -> Inspection:
    """Clean only if another child runs a job on the same path at the same time."""
    Path(f"{job.path}.{os.getpid()}").touch()
    deadline = time.monotonic() + 10
    while len(glob.glob(f"{glob.escape(job.path)}.*")) < 2:
        if time.monotonic() > deadline:
            raise AssertionError("no other child ran at the same time")
        time.sleep(0.01)
    return Inspection(Verdict(FileState.CLEAN, (), "text/plain"), str(os.getpid()))


def as_named(job: SandboxRequest) -> Inspection:
    """The runner above that the file is named after ("crash.png" crashes): one child, many."""
    runner = globals()[(job.original_name or "").partition(".")[0]]
    result: Inspection = runner(job)
    return result
