"""The queue seam: services record the jobs they want in the DB and hand them here after commit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from filegate.domain import JobRecord


class JobQueue(Protocol):
    def dispatch(self, jobs: Iterable[JobRecord]) -> None:
        """Send the trigger for jobs whose ledger rows are committed (``Jobs.want``).

        Best effort by design: a trigger lost here (broker down, process killed) is re-sent by
        the ``rescan`` sweep, because the ledger row says the job is still queued.
        """

    def check(self) -> None:
        """Raise when the broker cannot be reached (readiness)."""


class ExpectedJobFailure(Exception):
    """A job that failed for a reason outside this code (a webhook target that refuses or is
    refused): retried as usual, logged as a warning without a traceback."""


class Background(Protocol):
    """Something that runs beside the API (the embedded worker)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...
