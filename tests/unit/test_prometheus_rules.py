"""The alert rules in deploy/prometheus: valid, unit-tested with promtool, and about metrics
filegate really exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from filegate import metrics
from filegate.config import Settings
from filegate.db.engine import Database
from filegate.jobs.status import LEDGER
from tests.support.services import require_service

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"
OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    def present(_: str) -> None:
        if shutil.which("promtool") is None:
            raise FileNotFoundError("promtool is not installed (Debian: prometheus)")

    require_service("promtool", "promtool", present)
    return subprocess.run(
        ["promtool", *args], cwd=RULES, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rules_are_valid() -> None:
    result = _promtool("check", "rules", "filegate.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_when_it_should_and_not_otherwise() -> None:
    result = _promtool("test", "rules", "filegate.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def exported_names(settings: Settings) -> set[str]:
    """Every sample name this process can export, with the collectors pointed at real data."""
    database = Database(settings.resolved_database_url)
    LEDGER.db, metrics.STORAGE.path = database, settings.data_dir
    try:
        names = set()
        for family in REGISTRY.collect():
            if family.type == "counter":
                names.add(f"{family.name}_total")
            elif family.type == "histogram":
                names.update(f"{family.name}_{part}" for part in ("bucket", "count", "sum"))
            else:
                names.add(family.name)
        return names
    finally:
        LEDGER.db = None
        metrics.STORAGE.path = None
        database.dispose()


def test_every_metric_the_rules_use_is_one_filegate_exports(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    text = (RULES / "filegate.rules.yml").read_text()
    used = set(re.findall(r"\b(filegate_[a-z_]+)", text))
    assert used
    assert used <= exported_names(settings)


def test_every_alert_has_a_runbook() -> None:
    alerts = re.findall(r"- alert: (\w+)", (RULES / "filegate.rules.yml").read_text())
    headings = {h.strip().lower() for h in re.findall(r"^### (\w+)", OPERATIONS.read_text(), re.M)}
    assert alerts
    assert {a.lower() for a in alerts} <= headings


@pytest.mark.parametrize("name", ["filegate_jobs", "filegate_storage_free_ratio"])
def test_collectors_export_their_gauges(settings: Settings, name: str) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    assert name in exported_names(settings)
