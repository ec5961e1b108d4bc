"""Fixtures for the command-line tests (tests/unit/test_cli.py and the other CLI suites)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """Commands configure logging onto the runner's stderr, which is closed once they return."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A temporary SQLite install, with nothing from the caller's environment or directory."""
    for name in list(os.environ):
        if name.startswith("FILEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "var"
    return {
        "FILEGATE_DATA_DIR": str(data_dir),
        "FILEGATE_DATABASE_URL": f"sqlite:///{data_dir / 'filegate.db'}",
    }
