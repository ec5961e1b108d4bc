"""Run inspections of hostile input in a separate process with memory, CPU and time limits.

Parsers (Pillow, pikepdf, oletools, zip) are where hostile bytes bite. A child process runs
them under ``RLIMIT_AS`` and a per-job ``RLIMIT_CPU``, and the parent waits at most a wall
clock timeout; a crash, a timeout or a memory blow-up becomes a finding
(``inspection_failed`` / ``inspection_timeout``) and a fresh child, never a dead worker or a
promoted file. The child lives on between jobs, because importing the parsers and loading
the type model costs about a second.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import queue
import resource
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from filegate.domain import FileState, Finding, Verdict
from filegate.inspect.base import Inspection, SandboxRequest

CODES: dict[str, str] = {
    "inspection_failed": "The inspector crashed or ran out of memory on this file; it fails "
    "closed.",
    "inspection_timeout": "Inspecting the file took longer than the time limit; it fails closed.",
}


# What the child runs, imported by name there: the heavy parsers never load in the parent.
RUNNER = "filegate.inspect.pipeline:run_job"


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    # Parsing a 100 Mpx image needs ~400 MB; the ONNX type model maps ~300 MB of address space.
    memory_bytes: int = 2 * 1024 * 1024 * 1024
    cpu_seconds: int = 60
    wall_seconds: float = 120.0


def _failed(code: str, message: str) -> Inspection:
    verdict = Verdict(FileState.REJECTED, (Finding(code, message),), None)
    return Inspection(verdict=verdict, display_name="", sanitized_type=None)


def _child(connection: Connection, memory_bytes: int, cpu_seconds: int, runner: str) -> None:
    """The child's loop: one job in, one result out, until the parent closes the pipe."""
    # Ctrl-C signals the whole process group; the parent decides when this child ends (it
    # closes the pipe), so the child neither dies mid-job nor prints a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    module_name, _, function = runner.partition(":")
    module = importlib.import_module(module_name)
    run_job = getattr(module, function)
    # The parsers the API process never imports (the runner's ``preload``); the Magika model
    # still loads on the first job that needs it.
    if callable(preload := getattr(module, "preload", None)):
        preload()
    # Imports done: from here on the wall clock measures the job, not the child's start-up.
    connection.send(READY)

    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        used = int(resource.getrusage(resource.RUSAGE_SELF).ru_utime)
        resource.setrlimit(resource.RLIMIT_CPU, (used + cpu_seconds, resource.RLIM_INFINITY))
        try:
            result: Any = run_job(job)
        except MemoryError:
            result = _failed("inspection_failed", "the inspector ran out of memory")
        except Exception as exc:  # a parser bug must not kill the loop
            result = _failed("inspection_failed", f"the inspector crashed: {type(exc).__name__}")
        connection.send(result)


class InspectionInterrupted(Exception):
    """The child was stopped from outside (a shutdown, an operator), not by the file.

    Not a verdict: the job fails without one and runs again, here or on another worker.
    """


# Signals that mean "stop", sent by a shutdown (systemd signals the whole control group, and
# multiprocessing terminates daemonic children when the worker exits), never by a parser.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})

READY = "ready"
# Importing the parsers and the Magika model takes about a second; a loaded machine, more.
STARTUP_SECONDS = 60.0


class Sandbox:
    """Child processes that inspect one job each at a time; a job waits for a free one.

    Thread-safe: each of the worker's threads can inspect at once, up to ``processes``. A
    child is restarted after any crash or timeout, on its next job.
    """

    def __init__(
        self, limits: SandboxLimits | None = None, runner: str = RUNNER, processes: int = 1
    ) -> None:
        if processes < 1:
            raise ValueError("a sandbox needs at least one process")
        self.limits = limits or SandboxLimits()
        self.runner = runner
        self._children = [_Child(self, number) for number in range(processes)]
        # Last in, first out: a trickle of jobs keeps going to the same warm child.
        self._free: queue.LifoQueue[_Child] = queue.LifoQueue()
        for child in reversed(self._children):
            self._free.put(child)

    def run(self, job: SandboxRequest) -> Inspection:
        child = self._free.get()
        try:
            return child.run(job)
        finally:
            self._free.put(child)

    def start(self) -> None:
        """Start the children now, so the first uploads do not wait for their imports."""
        for child in self._children:
            child.start()

    def close(self) -> None:
        for child in self._children:
            child.close()

    @property
    def processes(self) -> int:
        return len(self._children)

    def pids(self) -> list[int]:
        """The children running now (the benchmark reads their /proc entries)."""
        return [pid for child in self._children if (pid := child.pid) is not None]


class _Child:
    """One child process, started on first use and after every crash or timeout."""

    def __init__(self, sandbox: Sandbox, number: int) -> None:
        self._sandbox = sandbox
        self._name = f"filegate-inspector-{number}"
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def run(self, job: SandboxRequest) -> Inspection:
        wall_seconds = self._sandbox.limits.wall_seconds
        with self._lock:
            try:
                connection = self._ensure_child()
                connection.send(job)
                if not connection.poll(wall_seconds):
                    self._kill()
                    return _failed("inspection_timeout", "inspection exceeded its time limit")
                result = connection.recv()
            except (EOFError, OSError, BrokenPipeError):
                return self._crashed()
            assert isinstance(result, Inspection)
            return result

    def start(self) -> None:
        with self._lock, contextlib.suppress(EOFError, OSError):
            # A child that fails to start here is started again by its first job.
            self._ensure_child()

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _ensure_child(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self._kill()
        limits = self._sandbox.limits
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_child,
            args=(child, limits.memory_bytes, limits.cpu_seconds, self._sandbox.runner),
            name=self._name,
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._connection = process, parent
        # A child that cannot even start is a crash; the job's own clock starts after this.
        if not parent.poll(STARTUP_SECONDS) or parent.recv() != READY:
            self._kill()
            raise EOFError("the inspector process did not start")
        return parent

    def _crashed(self) -> Inspection:
        process = self._process
        if process is not None:
            process.join(1)
        self._kill()
        exitcode = process.exitcode if process is not None else None
        # SIGXCPU is how RLIMIT_CPU ends a runaway parser.
        if exitcode == -signal.SIGXCPU:
            return _failed("inspection_timeout", "inspection exceeded its CPU limit")
        # A worker stopping mid-job must not leave a "rejected" behind for a clean file.
        if exitcode is not None and exitcode < 0 and -exitcode in STOP_SIGNALS:
            raise InspectionInterrupted(f"the inspector was stopped by signal {-exitcode}")
        return _failed("inspection_failed", "the inspector process died")

    def _kill(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
            self._process = None
