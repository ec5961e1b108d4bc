"""The shipped production and staging configurations are valid and require the scanner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filegate.config import load_settings

DEPLOY = Path(__file__).parents[2] / "deploy"


@pytest.mark.parametrize("name", ["filegate.production.toml", "filegate.staging.toml"])
def test_deploy_config_is_valid_and_requires_the_scanner(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("FILEGATE_"):
            monkeypatch.delenv(variable)
    settings = load_settings(DEPLOY / name)
    assert settings.scanner_required
    assert settings.clamd_url.startswith(("tcp://", "unix://"))
    assert settings.resolved_database_url.startswith("postgresql")
    assert not settings.embedded_worker
    assert settings.resolved_queue_url.startswith("redis://")
