"""How the database runs a statement: its plan (``EXPLAIN``) and its time, on both backends,
and the one thing checked of a plan: no large table read in full."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from filegate.db.invariants import row_counts

# Past this many rows a full scan costs in proportion to the table, where an index lookup
# stays at a few pages; below it the planner is right to read the whole table.
LARGE_TABLE_ROWS = 10_000
TIMED_RUNS = 5
# SQLite's EXPLAIN QUERY PLAN: "SCAN files" reads the table in full; "SCAN files USING INDEX
# ix" walks an index, "SEARCH files USING ..." seeks in one.
_SQLITE_SCAN = re.compile(r"^SCAN (?:TABLE )?(\w+)(?: AS \w+)?(?P<index> USING .*)?$")


@dataclass(frozen=True, slots=True)
class Plan:
    lines: tuple[str, ...]
    # Tables the plan reads in full, without an index.
    full_scans: tuple[str, ...]

    def summary(self) -> str:
        return "; ".join(line.strip() for line in self.lines)


def explain(connection: Connection, statement: Executable) -> Plan:
    """The plan the database picks for ``statement`` (not run, so an UPDATE changes nothing)."""
    postgres = connection.dialect.name == "postgresql"
    prefix = "EXPLAIN (FORMAT JSON)" if postgres else "EXPLAIN QUERY PLAN"
    sql, parameters = _compiled(connection, statement)
    rows = connection.exec_driver_sql(f"{prefix} {sql}", parameters).all()
    return _postgres_plan(rows[0][0]) if postgres else _sqlite_plan(rows)


def full_scans_of_large(plan: Plan, large: Collection[str]) -> list[str]:
    return [table for table in plan.full_scans if table in large]


def large_tables(connection: Connection, threshold: int = LARGE_TABLE_ROWS) -> set[str]:
    return {table for table, rows in row_counts(connection).items() if rows >= threshold}


def median_ms(connection: Connection, statement: Executable, runs: int = TIMED_RUNS) -> float:
    """The median time of ``runs`` executions, each rolled back, in milliseconds."""
    times = []
    for _ in range(runs):
        connection.rollback()
        try:
            started = time.perf_counter()
            connection.execute(statement).all()
            times.append((time.perf_counter() - started) * 1000)
        finally:
            connection.rollback()
    return statistics.median(times)


def _compiled(connection: Connection, statement: Executable) -> tuple[str, Any]:
    """The SQL and the parameters as the driver takes them (bind processors applied)."""
    dialect = connection.dialect
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    values = {}
    for name, value in compiled.construct_params().items():
        # An IN list, rendered, binds each item as <name>_<n>.
        bind = compiled.binds[name if name in compiled.binds else name.rsplit("_", 1)[0]]
        processor = bind.type.bind_processor(dialect)
        values[name] = processor(value) if processor else value
    if dialect.positional:
        return compiled.string, tuple(values[name] for name in compiled.positiontup or ())
    return compiled.string, values


def _postgres_plan(document: Any) -> Plan:
    lines, full = [], []
    for depth, node in _nodes(document[0]["Plan"]):
        table, index = node.get("Relation Name"), node.get("Index Name")
        text = node["Node Type"] + (f" using {index}" if index else "")
        lines.append("  " * depth + text + (f" on {table}" if table else ""))
        if node["Node Type"] == "Seq Scan" and table:
            full.append(table)
    return Plan(tuple(lines), tuple(full))


def _nodes(node: Mapping[str, Any], depth: int = 0) -> Iterator[tuple[int, Mapping[str, Any]]]:
    yield depth, node
    for child in node.get("Plans", ()):
        yield from _nodes(child, depth + 1)


def _sqlite_plan(rows: Collection[Any]) -> Plan:
    depths: dict[int, int] = {0: -1}
    lines, full = [], []
    for node_id, parent, _, detail in rows:
        depths[node_id] = depths.get(parent, -1) + 1
        lines.append("  " * depths[node_id] + detail)
        scan = _SQLITE_SCAN.match(detail)
        if scan and not scan.group("index"):
            full.append(scan.group(1))
    return Plan(tuple(lines), tuple(full))
