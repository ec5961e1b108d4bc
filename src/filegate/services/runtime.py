"""The collaborators a running filegate needs, built once by the composition root (``cli.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.jobs.base import JobQueue
from filegate.storage.base import Storage


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    queue: JobQueue
