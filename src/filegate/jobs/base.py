"""The queue seam: the web and service layers only ever ask for work to be done."""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def enqueue_inspection(self, file_id: str) -> None:
        """Ask for ``file_id`` to be inspected. Called only after the upload's row is committed."""


class Background(Protocol):
    """Something that runs beside the API (the embedded worker)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...
