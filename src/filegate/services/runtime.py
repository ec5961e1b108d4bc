"""The collaborators a running filegate needs, built once by the composition root (``cli.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from filegate.config import Settings
from filegate.db.engine import Database
from filegate.inspect import antivirus
from filegate.jobs.base import JobQueue
from filegate.storage.base import Storage


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    db: Database
    storage: Storage
    queue: JobQueue

    def scanner_status(self) -> str:
        """``off`` (no clamd configured), ``ok`` or ``failing``."""
        scanner = scanner_config(self.settings)
        if scanner is None:
            return "off"
        return "ok" if antivirus.ping(scanner) else "failing"


def scanner_config(settings: Settings) -> antivirus.ScannerConfig | None:
    if not settings.clamd_url:
        return None
    return antivirus.ScannerConfig(settings.clamd_url, settings.scanner_timeout_seconds)
