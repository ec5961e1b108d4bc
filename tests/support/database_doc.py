"""The generated sections of docs/database.md: each hot query's plan and time, and each
migration's duration, per backend, as measured by tests/contract/test_database_at_scale.py.

    FILEGATE_WRITE_DATABASE_DOC=1 .venv/bin/pytest tests/contract/test_database_at_scale.py

rewrites them; without the variable the test only checks that every query and revision is
there (the numbers change from run to run, the names must not).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from filegate.db.hot_queries import HotQuery
from filegate.db.plans import Plan

DOC = Path(__file__).resolve().parents[2] / "docs" / "database.md"
WRITE = "FILEGATE_WRITE_DATABASE_DOC"


def writing() -> bool:
    return os.environ.get(WRITE, "") not in ("", "0")


def plans_section(rows: Mapping[str, int], measured: Sequence[tuple[HotQuery, Plan, float]]) -> str:
    lines = [f"Rows: {_rows(rows)}. Measured {_today()}.", "", "```text"]
    for query, plan, milliseconds in measured:
        lines.append(f"{query.name:<22} {milliseconds:7.1f} ms   {query.runs}")
        lines.extend(f"    {line}" for line in plan.lines)
    return "\n".join([*lines, "```"])


def durations_section(
    rows: Mapping[str, int], upgrades: Mapping[str, float], rehearsal: Mapping[str, float]
) -> str:
    lines = [
        "Each revision's upgrade on a database grown revision by revision, every large table "
        "filled as soon as it exists; the newest revision (and its downgrade) through "
        f"`rehearse`, on a copy. Rows at the end: {_rows(rows)}. Measured {_today()}.",
        "",
        "| revision | upgrade | downgrade |",
        "| --- | ---: | ---: |",
    ]
    for revision, seconds in {**upgrades, **rehearsal}.items():
        down = rehearsal.get(f"downgrade {revision}")
        if revision.startswith("downgrade "):
            continue
        lines.append(
            f"| {revision} | {seconds:.2f} s | {'-' if down is None else f'{down:.2f} s'} |"
        )
    return "\n".join(lines)


def replace(text: str, name: str, body: str) -> str:
    """``text`` with the generated section ``name`` holding ``body``."""
    begin, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    assert pattern.search(text), f"docs/database.md lacks the markers of {name}"
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def section(text: str, name: str) -> str:
    begin, end = f"<!-- generated: {name} -->", f"<!-- end: {name} -->"
    start = text.index(begin) + len(begin)
    return text[start : text.index(end, start)]


def _rows(rows: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {count:,}" for table, count in sorted(rows.items()) if count)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
