"""Running `filegate import` on a terminal: the progress bar, and a worker started on demand.

Kept out of ``cli.py`` so other commands do not import rich's progress machinery.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from filegate.jobs.worker import Worker
from filegate.services import imports as import_service


def import_all(
    importer: import_service.Importer,
    sources: list[import_service.Source],
    embedded: OnDemandWorker,
    wait_seconds: float,
) -> import_service.Summary:
    with ImportProgress(len(sources)) as progress:

        def file_done(result: import_service.FileResult) -> None:
            progress.file_done(result)
            embedded.file_done(result)

        tally = import_service.import_all(importer, sources, file_done)
        return import_service.await_verdicts(
            importer.db, tally, timeout=wait_seconds, on_progress=progress.verdicts
        )


class OnDemandWorker:
    """The embedded worker, started by the first new file: a run that finds nothing new to
    inspect does not pay for the inspector's start-up."""

    def __init__(
        self, worker: Worker, *, enabled: bool, on_start: Callable[[], None] | None = None
    ) -> None:
        self._worker, self._enabled, self._on_start = worker, enabled, on_start
        self._started = False

    def file_done(self, result: import_service.FileResult) -> None:
        if (
            self._enabled
            and not self._started
            and result.outcome is import_service.ImportOutcome.IMPORTED
        ):
            if self._on_start is not None:
                self._on_start()
            self._worker.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._worker.stop()


class ImportProgress:
    """A progress bar on stderr when it is a terminal; otherwise nothing (the log has each file)."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._bar: Progress | None = None
        self._copying = self._inspecting = TaskID(0)
        self._restore: list[tuple[logging.StreamHandler[Any], Any]] = []

    def __enter__(self) -> ImportProgress:
        if not sys.stderr.isatty():
            return self
        self._bar = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._copying = self._bar.add_task("importing", total=self._total)
        self._inspecting = self._bar.add_task("inspecting", total=None, visible=False)
        self._bar.start()
        # The bar now owns a proxy for stderr; log lines written through it print above the bar.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                old = handler.setStream(sys.stderr)
                if old is not None:
                    self._restore.append((handler, old))
        return self

    def __exit__(self, *_: object) -> None:
        for handler, stream in self._restore:
            handler.setStream(stream)
        if self._bar is not None:
            self._bar.stop()

    def file_done(self, _: import_service.FileResult) -> None:
        if self._bar is not None:
            self._bar.advance(self._copying)

    def verdicts(self, done: int, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._inspecting, completed=done, total=total, visible=True)
