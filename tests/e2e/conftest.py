"""Black-box fixtures: a real ``filegate serve`` process per test, on each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import MIB, LiveServer, profiles_env

E2E_DIR = Path(__file__).parent

# A tight cap so over-size uploads are cheap to send.
SMALL_PROFILE = {
    "extensions": ["png", "txt", "bin"],
    "types": ["image/png", "text/plain", "application/octet-stream"],
    "max_size": MIB,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items, so only mark the ones in this directory.
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def live(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    """A started server with the built-in profiles plus ``small`` (1 MiB)."""
    with LiveServer(tmp_path, database_url, profiles_env(small=SMALL_PROFILE)) as server:
        yield server
