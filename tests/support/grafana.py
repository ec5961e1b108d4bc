"""The Grafana dashboard in deploy/grafana, read as the tests need it: its panels, and the
PromQL of every query with Grafana's variables filled in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "filegate.json"
RULES = DEPLOY / "prometheus" / "filegate.rules.yml"

# Grafana's interval variables, replaced by a duration so the query is PromQL.
INTERVALS = re.compile(r"\$\{?__(?:rate_interval|interval|range)\b\}?")
# Dashboard variables ($instance, ${instance}, ${instance:regex}, [[instance]]): Grafana puts
# their value inside a label matcher's string, where any regex will do.
VARIABLES = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]")

# -- the dashboard --------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows included, and the panels a collapsed row holds."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


@dataclass(frozen=True)
class Query:
    where: str  # which panel, variable or annotation, for the failure messages
    expr: str  # as written in the dashboard, Grafana variables and all


def dashboard_queries(dashboard: dict[str, Any]) -> list[Query]:
    """The PromQL of every panel target, query variable and Prometheus annotation."""
    found = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            where = f'panel {panel.get("id")} "{panel.get("title")}" query {target.get("refId")}'
            found.append(Query(where, target.get("expr", "")))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            text = query.get("query", "") if isinstance(query, dict) else str(query or "")
            found.append(Query(f'variable "{variable.get("name")}"', variable_promql(text)))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            found.append(Query(f'annotation "{annotation.get("name")}"', annotation["expr"]))
    return found


def variable_promql(query: str) -> str:
    """A Prometheus variable query as PromQL: ``label_values(m, l)`` reads label ``l`` of
    the series ``m``, so ``group by (l) (m)`` names the same series and label."""
    query = query.strip()
    if match := re.fullmatch(r"label_values\((.+),\s*(\w+)\s*\)", query, re.S):
        return f"group by ({match[2]}) ({match[1]})"
    if match := re.fullmatch(r"query_result\((.+)\)", query, re.S):
        return match[1]
    return query


def as_promql(expr: str, interval: str = "5m") -> str:
    """The expression Prometheus receives once Grafana filled in its variables."""
    return VARIABLES.sub(".*", INTERVALS.sub(interval, expr))
