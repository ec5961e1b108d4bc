"""The Grafana dashboard in deploy/grafana is valid and honest.

Valid: the JSON is a dashboard Grafana imports (schemaVersion 39, uid ``filegate``, a
Prometheus ``datasource`` variable every panel uses, four rows named after the questions they
answer, unique panel ids), every panel has queries, and every PromQL expression in it (panels,
template variables, the deploy annotation) parses: promtool checks them as recording rules.

Honest: every metric a query names is one a filegate process really exports (read from its
``/metrics`` after an upload went through inspection), a recording rule of
deploy/prometheus/filegate.rules.yml, or Prometheus's own ``up``; and every label a query
filters or groups by is one that series has once Prometheus scraped it. A misspelt metric or
label fails the test: ``test_the_checks_catch_a_misspelt_metric_and_label`` proves it on a
copy of the dashboard.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from filegate import metrics
from filegate.config import load_settings
from filegate.db import migrate
from filegate.inspect.sandbox import Sandbox
from filegate.jobs.status import LEDGER
from tests.conftest import Api, running_api
from tests.support.grafana import (
    DASHBOARD,
    RULES,
    Query,
    all_panels,
    as_promql,
    dashboard_queries,
    load_dashboard,
)
from tests.support.services import require_service, without_filegate_env

ROWS = ("Is it up?", "Is it slow?", "Are jobs failing?", "Did the last deploy change anything?")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Labels Prometheus attaches to every series from its scrape target. A label of the same name
# in the scraped data is kept as exported_<name> (honor_labels: false, the default).
TARGET_LABELS = frozenset({"job", "instance"})
# Series Prometheus makes itself for each target.
PROMETHEUS_SERIES = {"up": TARGET_LABELS}


# -- PromQL: which metrics and labels an expression uses --------------------------------------

_TOKENS = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
  | (?P<space>\s+)
    """,
    re.X,
)
# Words that are not metric names even without a parenthesis after them (an aggregation may
# have its by/without list before its parenthesis). PromQL reserves them all.
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
KEYWORDS = AGGREGATIONS | frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"and", "or", "unless", "atan2", "inf", "nan"}
)
MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})
# Modifiers whose parenthesis holds label names, not an expression.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


@dataclass
class Uses:
    """What one expression reads: each selector's metric (None: ``{...}`` alone) with the
    labels its matchers name, and the labels its by/without/on/ignoring/group_* lists name."""

    selectors: list[tuple[str | None, frozenset[str]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)  # the by (...) lists alone

    @property
    def metrics(self) -> set[str]:
        return {name for name, _ in self.selectors if name is not None}


def tokens(expr: str) -> list[tuple[str, str]]:
    found = []
    position = 0
    while position < len(expr):
        match = _TOKENS.match(expr, position)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[position : position + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            found.append((kind, match.group()))
        position = match.end()
    return found


def uses(expr: str) -> Uses:
    """Metrics and labels in ``expr``, read from its tokens: strings, numbers and durations
    are skipped, a name followed by ``(`` is a function or aggregation, keywords are words."""
    found = Uses()
    items = tokens(expr)
    index = 0
    while index < len(items):
        kind, text = items[index]
        following = items[index + 1][1] if index + 1 < len(items) else ""
        if kind == "name" and text.lower() in LABEL_LISTS and following == "(":
            labels, index = _label_list(items, index + 2)
            found.grouping |= labels
            if text.lower() == "by":
                found.kept |= labels
            continue
        if kind == "name" and text.lower() not in KEYWORDS and following != "(":
            matchers: frozenset[str] = frozenset()
            index += 1
            if following == "{":
                matchers, index = _matchers(items, index + 1)
            found.selectors.append((text, matchers - {"__name__"}))
            continue
        if text == "{":  # a selector without a metric name in front
            matchers, index = _matchers(items, index + 1)
            found.selectors.append((None, matchers))
            continue
        index += 1
    # {__name__="m"} names a metric too.
    for position in range(len(items) - 2):
        if items[position][1] == "__name__" and items[position + 1][1] == "=":
            found.selectors.append((items[position + 2][1].strip("\"'`"), frozenset()))
    return found


def _label_list(items: list[tuple[str, str]], index: int) -> tuple[set[str], int]:
    labels = set()
    while index < len(items) and items[index][1] != ")":
        if items[index][0] == "name":
            labels.add(items[index][1])
        index += 1
    return labels, index + 1


def _matchers(items: list[tuple[str, str]], index: int) -> tuple[frozenset[str], int]:
    labels = set()
    while index < len(items) and items[index][1] != "}":
        kind, text = items[index]
        following = items[index + 1][1] if index + 1 < len(items) else ""
        if kind == "name" and following in MATCH_OPERATORS:
            labels.add(text)
        index += 1
    return frozenset(labels), index + 1


# -- what filegate and its rules really provide ------------------------------------------------


def scraped(labels: Iterable[str]) -> frozenset[str]:
    """A series' labels once Prometheus scraped it: the target's job and instance added, and
    filegate's own label of either name kept as exported_<name>."""
    return frozenset(f"exported_{n}" if n in TARGET_LABELS else n for n in labels) | TARGET_LABELS


def declared_labels() -> dict[str, tuple[str, ...]]:
    """The label names of every metric filegate.metrics declares, observed or not yet: a
    labelled metric nobody used prints only its HELP and TYPE lines."""
    return {
        value._name: tuple(value._labelnames)
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
    }


SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def exported_series(exposition: str) -> dict[str, frozenset[str]]:
    """Every series name in a /metrics text, with the labels it has in Prometheus."""
    declared = declared_labels()
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        base = set(declared.get(family.name, ()))
        for suffix in SUFFIXES.get(family.type, ("",)):
            found.setdefault(family.name + suffix, set()).update(base)
        if family.type == "histogram":
            found[f"{family.name}_bucket"].add("le")
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return {name: scraped(labels) for name, labels in found.items()}


def recording_rules(text: str) -> dict[str, frozenset[str]]:
    """Each recording rule's name and the labels its result keeps (its ``by`` lists)."""
    rules: dict[str, frozenset[str]] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        record = re.match(r"\s*- record:\s*(\S+)", line)
        if record is None:
            continue
        expr_line = lines[number + 1]
        key = re.match(r"(\s*)expr:\s*(.*)", expr_line)
        assert key is not None, f"{record[1]}: expected expr: after record:"
        indent, first = len(key[1]), key[2]
        body = [] if first.startswith((">", "|")) else [first]
        for more in lines[number + 2 :]:
            if more.strip() and len(more) - len(more.lstrip()) <= indent:
                break
            body.append(more)
        rules[record[1]] = frozenset(uses("\n".join(body)).kept - {"le"})
    return rules


def exposition_after_traffic(api: Api) -> str:
    """/metrics once an upload went through inspection, another waits for it, and readiness
    was probed; the scrape-time collectors point at the real ledger and storage, as `filegate
    serve` does. Labels a scrape shows then include the ledger's, which exist only as samples."""
    assert api.upload(b"hello\n", "note.txt").status_code == 202
    assert api.inspect() > 0
    assert api.upload(b"waiting\n", "later.txt").status_code == 202  # its job stays queued
    assert api.client.get("/readyz").status_code == 200
    saved = LEDGER.db, metrics.STORAGE.path
    LEDGER.db, metrics.STORAGE.path = api.runtime.db, api.runtime.settings.resolved_storage_dir
    try:
        response = api.client.get("/metrics")
    finally:
        LEDGER.db, metrics.STORAGE.path = saved
    assert response.status_code == 200
    return response.text


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory, sandbox: Sandbox) -> dict[str, frozenset[str]]:
    """Every series a query may name, with its labels: filegate's, the rules', and ``up``."""
    root = tmp_path_factory.mktemp("dashboard")
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_filegate_env(monkeypatch, root)
        url = f"sqlite:///{root / 'filegate.db'}"
        settings = load_settings(data_dir=root / "var", database_url=url)
        migrate.upgrade(url)
        with running_api(settings, sandbox) as api:
            exposition = exposition_after_traffic(api)
    return exported_series(exposition) | recording_rules(RULES.read_text()) | PROMETHEUS_SERIES


def unknown_metrics(queries: list[Query], known: dict[str, frozenset[str]]) -> list[str]:
    return [
        f"{query.where}: {name} is not exported by filegate, a recording rule, or up"
        for query in queries
        for name in sorted(uses(as_promql(query.expr)).metrics - known.keys())
    ]


def unknown_labels(queries: list[Query], known: dict[str, frozenset[str]]) -> list[str]:
    problems = []
    for query in queries:
        used = uses(as_promql(query.expr))
        for name, matchers in used.selectors:
            have = known.get(name, frozenset()) if name else frozenset()
            if name in known and not matchers <= have:
                problems.append(f"{query.where}: {name} has no {sorted(matchers - have)}")
        present = set().union(*(known.get(name, ()) for name in used.metrics))
        if not used.grouping <= present:
            missing = sorted(used.grouping - present)
            problems.append(f"{query.where}: no series it reads has {missing}")
    return problems


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def test_the_dashboard_is_one_grafana_imports(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "filegate"
    assert dashboard["schemaVersion"] == 39
    assert dashboard.get("id") is None  # an id from another Grafana would clash on import
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    rows: dict[str, int] = {}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            rows[panel["title"]] = len(panel.get("panels", []))
        else:
            assert rows, f"{panel['title']} comes before the first row"
            rows[list(rows)[-1]] += 1
    assert list(rows) == list(ROWS)
    assert all(rows.values()), f"a row without panels: {rows}"


def test_every_panel_has_a_title_and_queries_and_its_own_id(dashboard: dict[str, Any]) -> None:
    panels = all_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    graphs = [panel for panel in panels if panel["type"] != "row"]
    for panel in panels:
        assert panel.get("title", "").strip(), f"panel {panel['id']} has no title"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the dashboard"
    for panel in graphs:
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']} has no queries"
        assert all(t.get("expr", "").strip() for t in targets), f"{panel['title']}: no expr"
        # The datasource variable, never a uid from the Grafana it was made on.
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in targets), panel["title"]


def _promtool() -> str:
    def present(_: str) -> None:
        if shutil.which("promtool") is None:
            raise FileNotFoundError("promtool is not installed (Debian: prometheus)")

    require_service("promtool", "promtool", present)
    return shutil.which("promtool") or "promtool"


def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 16
    rules = [
        {"record": f"dashboard:query_{number}", "expr": as_promql(query.expr)}
        for number, query in enumerate(queries)
    ]
    # JSON is YAML: promtool reads it as a rules file.
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=2))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    where = "\n".join(f"dashboard:query_{n} = {q.where}" for n, q in enumerate(queries))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{where}"
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_every_metric_a_query_names_exists(
    dashboard: dict[str, Any], known: dict[str, frozenset[str]]
) -> None:
    queries = dashboard_queries(dashboard)
    named = set().union(*(uses(as_promql(q.expr)).metrics for q in queries))
    assert len(named) >= 15  # the reader found the metrics, not nothing
    assert unknown_metrics(queries, known) == []


def test_every_label_a_query_uses_is_on_its_series(
    dashboard: dict[str, Any], known: dict[str, frozenset[str]]
) -> None:
    assert unknown_labels(dashboard_queries(dashboard), known) == []


def test_the_checks_catch_a_misspelt_metric_and_label(known: dict[str, frozenset[str]]) -> None:
    text = DASHBOARD.read_text()
    assert "filegate_uploads_total" in text
    assert "by (code)" in text
    misspelt = text.replace("filegate_uploads_total", "filegate_upload_total").replace(
        "by (code)", "by (reason)"
    )
    queries = dashboard_queries(json.loads(misspelt))
    assert any("filegate_upload_total is not" in p for p in unknown_metrics(queries, known))
    assert any("['reason']" in p for p in unknown_labels(queries, known))


@pytest.mark.parametrize(
    ("expr", "metrics_used", "labels"),
    [
        ('sum by (le) (rate(a_bucket{x="1", y=~"$v"}[$__rate_interval]))', {"a_bucket"}, {"le"}),
        (
            "sum(rate(a_total[5m] offset 1h)) without (z) / on(i) group_left(r) b",
            {"a_total", "b"},
            {"z", "i", "r"},
        ),
        (
            'histogram_quantile(0.95, x) > bool 1e3 and {__name__="c", k="by (q)"}',
            {"x", "c"},
            set(),
        ),
        ("max_over_time(d:e:f[5m:1m]) unless g @ end()", {"d:e:f", "g"}, set()),
    ],
)
def test_the_reader_finds_metrics_and_labels(
    expr: str, metrics_used: set[str], labels: set[str]
) -> None:
    found = uses(as_promql(expr))
    assert found.metrics == metrics_used
    assert found.grouping == labels


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_no_datasource_is_hard_coded(dashboard: dict[str, Any]) -> None:
    """Every datasource reference is the variable (or Grafana's own, for its annotations)."""
    for node in _walk(dashboard):
        if isinstance(node, dict) and isinstance(node.get("datasource"), dict):
            assert node["datasource"]["uid"] in ("${datasource}", "-- Grafana --"), node
