"""Run the benchmark: every workload against every server, in alternating order, several rounds.

``python -m bench.run [--quick | --smoke] [--s3] [--rounds N] [--sizes 100M 1G 4G] ...``;
``--help`` lists the rest. ``make bench`` is the full run, with ``--s3``; it writes
``bench/results/<date>.json``, ``docs/benchmarks.md`` and ``docs/benchmarks.png``. ``--quick``
and ``--smoke`` write into ``bench/.peers/runs/`` instead, so a small run never replaces the
published numbers. A run of the S3 servers alone writes ``bench/results/<date>-s3.json`` and
only the S3 section of ``docs/benchmarks.md`` (bench/report.py).

filegate runs in two configurations on local disk: ``filegate`` (SQLite, the embedded worker)
and ``filegate-pg`` (PostgreSQL, a Redis queue and a separate ``filegate worker`` process; it
needs both services, bench/servers.py). The throughput workloads measure the accept path:
filegate receives and queues, nothing inspects during them (``--no-embedded-worker``, the worker
process stopped). ``pipeline`` and ``time_to_clean`` measure the whole way to the verdict with
the worker running, and so does the memory curve.

``--s3`` adds ``filegate-s3`` and ``tus-node-s3``: filegate with ``storage_url = s3://...`` and
@tus/server with @tus/s3-store, each with a bucket of its own on one SeaweedFS started for the
run (bench/s3.py). They take the tus workloads and the memory curve like the others (filegate
on S3 inspecting, as its section has always measured it).

Within one workload the servers run side by side, each on its own port and temp dir, and take
turns: round 1 is A B C D, round 2 B C D A, and so on, after one untimed warm-up each. Before
each timed run the page cache is flushed (``sync``), so no server pays for another's writeback;
after it, the stored bytes are checked by sha256 and deleted, outside the timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import filegate
from bench import clients, peers, report
from bench.clients import MIB
from bench.s3 import S3Service, seaweedfs
from bench.servers import (
    ALL_SERVER_NAMES,
    FILEGATE_NAMES,
    S3_SERVER_NAMES,
    SERVER_NAMES,
    BenchServer,
    FilegateServer,
    ServerError,
    make_server,
    postgres_and_redis_problem,
)

REPO = Path(__file__).resolve().parent.parent
GIB = 1024 * MIB
# The memory curve runs filegate as deployed, inspecting what it receives.
MEMORY_CURVE_INSPECTION = True


@dataclass(frozen=True)
class Config:
    rounds: int = 5
    stream_size: int = GIB
    chunk_size: int = 8 * MIB
    small_count: int = 200
    small_size: int = MIB
    concurrency: int = 16
    # time_to_clean: this many uploads of clean_size, one after another, each to its verdict.
    clean_size: int = MIB
    clean_count: int = 20
    curve_sizes: tuple[int, ...] = (100 * MIB, GIB, 4 * GIB)
    warmup_size: int = 4 * MIB
    servers: tuple[str, ...] = SERVER_NAMES
    workloads: tuple[str, ...] = ()
    max_minutes: float = 60.0
    # Fresh servers for every workload and every memory-curve point; the smoke run shares one
    # set, because starting filegate (import, migrate, key) takes seconds on a busy box.
    fresh_servers: bool = True
    preset: str = "full"


PRESETS = {
    "full": Config(),
    "quick": Config(
        rounds=1,
        stream_size=64 * MIB,
        small_count=64,
        clean_count=10,
        curve_sizes=(16 * MIB, 64 * MIB),
        max_minutes=15.0,
        preset="quick",
    ),
    "smoke": Config(
        rounds=1,
        stream_size=4 * MIB,
        chunk_size=MIB,
        small_count=8,
        small_size=64 * 1024,
        concurrency=4,
        clean_count=3,
        curve_sizes=(MIB, 4 * MIB),
        warmup_size=MIB,
        max_minutes=10.0,
        fresh_servers=False,
        preset="smoke",
    ),
}


@dataclass
class RunResult:
    """What one timed run measured, and what it stored (checked and deleted afterwards)."""

    values: dict[str, float]
    ids: list[str] = field(default_factory=list)
    size: int = 0


# --- the workloads -------------------------------------------------------------------------


def _mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def tus_stream(server: BenchServer, size: int, cfg: Config) -> RunResult:
    with clients.TusClient(server.base_url, server.tus_path, server.headers) as client:
        started = time.perf_counter()
        upload_id = client.upload_stream(size)
        seconds = time.perf_counter() - started
    return RunResult({"seconds": seconds, "mib_s": _mib_s(size, seconds)}, [upload_id], size)


def tus_chunked(server: BenchServer, size: int, cfg: Config) -> RunResult:
    with clients.TusClient(server.base_url, server.tus_path, server.headers) as client:
        started = time.perf_counter()
        upload_id = client.upload_chunked(size, min(cfg.chunk_size, size))
        seconds = time.perf_counter() - started
    return RunResult({"seconds": seconds, "mib_s": _mib_s(size, seconds)}, [upload_id], size)


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def _latency_values(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    """``<prefix>_p50_ms`` and ``<prefix>_p99_ms`` of latencies given in seconds."""
    return {
        f"{prefix}_p50_ms": _percentile(seconds, 0.50) * 1000,
        f"{prefix}_p99_ms": _percentile(seconds, 0.99) * 1000,
    }


def _upload_concurrently(
    server: BenchServer, count: int, cfg: Config, verdicts: bool = False
) -> tuple[clients.ConcurrentResult, dict[str, float]]:
    """``count`` uploads of ``small_size`` from ``concurrency`` clients, and what the client
    side measured: uploads/s, MiB/s, errors and latencies over the upload phase, and the
    client's CPU (its CPU is what the server cannot have on these 2 cores)."""
    client_before = time.process_time()
    result = clients.upload_concurrently(
        server.base_url,
        server.tus_path,
        server.headers,
        count=count,
        size=cfg.small_size,
        concurrency=cfg.concurrency,
        verdicts=verdicts,
    )
    done = len(result.ids)
    values = {
        "seconds": result.seconds,
        "client_cpu_s": time.process_time() - client_before,
        "uploads_s": done / result.seconds,
        "mib_s": _mib_s(done * cfg.small_size, result.seconds),
        "errors": float(len(result.errors)),
        **_latency_values("upload", result.upload_latencies),
        **_latency_values("request", result.request_latencies),
    }
    for error in result.errors[:3]:
        _say(f"    {server.name} error: {error}")
    return result, values


def tus_concurrent(server: BenchServer, count: int, cfg: Config) -> RunResult:
    result, values = _upload_concurrently(server, count, cfg)
    return RunResult(values, result.ids, cfg.small_size)


def _inspecting(server: BenchServer) -> FilegateServer:
    if not isinstance(server, FilegateServer) or not server.inspection:
        raise ServerError(f"{server.name}: this workload needs filegate, inspecting")
    return server


def _to_verdict(server: BenchServer, result: clients.ConcurrentResult) -> list[float]:
    """Per upload, seconds from its last PATCH answered to its verdict; every one clean."""
    for file_id, state in result.verdicts.items():
        if state != "clean":
            raise ServerError(f"{server.name}: {file_id} ended {state}, not clean")
    return [result.verdict_at[i] - result.completed_at[i] for i in result.ids]


def pipeline(server: BenchServer, count: int, cfg: Config) -> RunResult:
    """The concurrent uploads with the worker running, from the first byte to the last
    verdict; and for each file, the time from its last PATCH answered to its verdict."""
    result, upload = _upload_concurrently(_inspecting(server), count, cfg, verdicts=True)
    to_verdict = _to_verdict(server, result)
    seconds = max(result.verdict_at.values(), default=result.started) - result.started
    values = {
        "seconds": seconds,
        "uploads_s": len(result.ids) / seconds if seconds > 0 else 0.0,
        "accept_uploads_s": upload["uploads_s"],
        "errors": upload["errors"],
        "upload_p50_ms": upload["upload_p50_ms"],
        "upload_p99_ms": upload["upload_p99_ms"],
        **_latency_values("verdict", to_verdict),
        "verdict_polls": float(result.verdict_polls),
        "client_cpu_s": upload["client_cpu_s"],
    }
    return RunResult(values, result.ids, cfg.small_size)


def _direct(multipart: bool) -> Callable[[BenchServer, int, Config], RunResult]:
    def run(server: BenchServer, size: int, cfg: Config) -> RunResult:
        started = time.perf_counter()
        file_id = clients.post_file(server.base_url, server.headers, size, multipart)
        seconds = time.perf_counter() - started
        return RunResult({"seconds": seconds, "mib_s": _mib_s(size, seconds)}, [file_id], size)

    return run


def time_to_clean(server: BenchServer, count: int, cfg: Config) -> RunResult:
    """``count`` uploads of ``clean_size`` (tus, one PATCH) one after another, each waiting
    for its verdict: the time from upload complete to verdict on an idle server."""
    filegate = _inspecting(server)
    result = clients.upload_each_to_verdict(
        filegate.base_url, filegate.tus_path, filegate.headers, count=count, size=cfg.clean_size
    )
    return RunResult(
        _latency_values("clean", _to_verdict(server, result)), result.ids, cfg.clean_size
    )


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    run: Callable[[BenchServer, int, Config], RunResult]
    # Bytes, or uploads for the workloads of many uploads; the same for the warm-up.
    amount: Callable[[Config], int]
    warmup: Callable[[Config], int]
    # filegate's own API, on local disk only (the S3 comparison is the tus workloads).
    only_filegate: bool = False
    # Whether filegate inspects during the run: off for the accept path, where uploads are
    # received and queued but no worker runs (BenchServer.set_inspection).
    inspection: bool = False


WORKLOADS = (
    Workload(
        "tus_stream",
        "tus: one upload in a single PATCH",
        tus_stream,
        lambda c: c.stream_size,
        lambda c: c.warmup_size,
    ),
    Workload(
        "tus_chunked",
        "tus: one upload in {chunk} PATCHes",
        tus_chunked,
        lambda c: c.stream_size,
        lambda c: c.warmup_size,
    ),
    Workload(
        "tus_concurrent",
        "tus: many small uploads, concurrent clients",
        tus_concurrent,
        lambda c: c.small_count,
        lambda c: c.concurrency,
    ),
    Workload(
        "direct_raw",
        "filegate POST /v1/files, raw body",
        _direct(multipart=False),
        lambda c: c.stream_size,
        lambda c: c.warmup_size,
        only_filegate=True,
    ),
    Workload(
        "direct_multipart",
        "filegate POST /v1/files, multipart",
        _direct(multipart=True),
        lambda c: c.stream_size,
        lambda c: c.warmup_size,
        only_filegate=True,
    ),
    Workload(
        "time_to_clean",
        "filegate: upload complete to verdict, idle",
        time_to_clean,
        lambda c: c.clean_count,
        lambda c: 2,
        only_filegate=True,
        inspection=True,
    ),
    Workload(
        "pipeline",
        "filegate: whole pipeline, first byte to last verdict",
        pipeline,
        lambda c: c.small_count,
        lambda c: c.concurrency,
        only_filegate=True,
        inspection=True,
    ),
)
WORKLOAD_KEYS = tuple(w.key for w in WORKLOADS)


# --- running -------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Deadline:
    def __init__(self, minutes: float) -> None:
        self.minutes = minutes
        self.end = time.monotonic() + minutes * 60

    def passed(self) -> bool:
        return time.monotonic() > self.end


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def measured(workload: Workload, server: BenchServer, amount: int, cfg: Config) -> dict[str, float]:
    """One timed run with the server's CPU and peak RSS around it; checks and deletes after."""
    os.sync()
    server.reset_peak()
    before = server.usage()
    load = _loadavg()
    outcome = workload.run(server, amount, cfg)
    server.settle()
    after = server.usage()
    server.verify(outcome.ids, clients.sha256_of(outcome.size), outcome.size)
    server.discard(outcome.ids)
    sample = {
        **outcome.values,
        "cpu_s": after.cpu_s - before.cpu_s,
        "peak_rss_mb": after.peak_rss_mb,
        "api_peak_rss_mb": after.api_peak_rss_mb,
        "processes": float(after.processes),
        "loadavg_1m": load,
    }
    if after.s3_cpu_s is not None and before.s3_cpu_s is not None:
        sample["s3_cpu_s"] = after.s3_cpu_s - before.s3_cpu_s
    return sample


def _servers_for(workload: Workload, cfg: Config) -> list[str]:
    return [n for n in cfg.servers if n in FILEGATE_NAMES or not workload.only_filegate]


class Fleet:
    """Starts servers: fresh each time asked, or (shared) once, stopped by ``close``; either
    way inspecting or not as asked (a shared filegate switches between workloads)."""

    def __init__(
        self, installed: peers.Peers | None, shared: bool, s3: S3Service | None = None
    ) -> None:
        self.installed = installed
        self.shared = shared
        self.s3 = s3
        self._running: dict[str, BenchServer] = {}

    @contextmanager
    def servers(self, names: Sequence[str], inspection: bool) -> Iterator[list[BenchServer]]:
        if self.shared:
            for name in names:
                if name in self._running:
                    self._running[name].set_inspection(inspection)
                else:
                    self._running[name] = self._start(name, inspection)
            yield [self._running[n] for n in names]
            return
        started: list[BenchServer] = []
        try:
            for name in names:
                started.append(self._start(name, inspection))
            yield started
        finally:
            for server in started:
                server.stop()

    def _start(self, name: str, inspection: bool) -> BenchServer:
        server = make_server(name, self.installed, self.s3)
        server.set_inspection(inspection)
        return server.start()

    def close(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


def run_workload(
    workload: Workload, cfg: Config, fleet: Fleet, deadline: Deadline
) -> dict[str, Any]:
    names = _servers_for(workload, cfg)
    amount = workload.amount(cfg)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    _say(f"== {workload.key} ({', '.join(names)})")
    with fleet.servers(names, workload.inspection) as started:
        for server in started:
            measured(workload, server, workload.warmup(cfg), cfg)
        for number in range(cfg.rounds):
            if deadline.passed():
                _say(f"   time limit of {deadline.minutes:g} min reached; rounds cut")
                break
            turn = number % len(started)
            for server in started[turn:] + started[:turn]:
                sample = measured(workload, server, amount, cfg)
                runs[server.name].append(sample)
                _say(f"   round {number + 1} {server.name}: {brief(sample)}")
    return {
        "title": workload.title.format(chunk=report.size_text(cfg.chunk_size)),
        "amount": amount,
        "servers": {name: {"runs": r, "summary": summarise(r)} for name, r in runs.items()},
    }


def brief(sample: dict[str, float]) -> str:
    keys = (
        "mib_s",
        "uploads_s",
        "verdict_p99_ms",
        "clean_p50_ms",
        "cpu_s",
        "peak_rss_mb",
        "api_peak_rss_mb",
        "errors",
    )
    return ", ".join(f"{k}={sample[k]:.3g}" for k in keys if k in sample)


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    if not runs:
        return {}
    summary = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        summary[key] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return summary


def memory_curve(cfg: Config, fleet: Fleet, deadline: Deadline) -> dict[str, Any]:
    """Peak RSS of a fresh, warmed-up server while it takes one upload of each size."""
    curve: dict[str, list[dict[str, float]]] = {n: [] for n in cfg.servers}
    stream = WORKLOADS[0]
    _say(f"== memory_curve: sizes {', '.join(_size_text(s) for s in cfg.curve_sizes)}")
    for size in cfg.curve_sizes:
        for name in cfg.servers:
            if deadline.passed():
                _say(f"   time limit of {deadline.minutes:g} min reached; curve cut")
                return curve
            with fleet.servers([name], MEMORY_CURVE_INSPECTION) as (server,):
                measured(stream, server, cfg.warmup_size, cfg)
                warm_mb = server.usage().peak_rss_mb
                sample = measured(stream, server, size, cfg)
            point = {"size": float(size), "warmup_peak_rss_mb": warm_mb, **sample}
            curve[name].append(point)
            _say(f"   {_size_text(size)} {name}: peak {sample['peak_rss_mb']:.1f} MB")
    return curve


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def _git_output(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # --no-optional-locks: reading the status must not rewrite the index.
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [git, "--no-optional-locks", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _git() -> dict[str, Any]:
    """The commit measured, and whether the code measured had changes on top of it."""
    status = _git_output("status", "--porcelain", "--", "src", "pyproject.toml", "uv.lock")
    return {
        "commit": _git_output("rev-parse", "HEAD") or "unknown",
        "dirty": None if status is None else bool(status),
    }


@contextmanager
def object_storage(cfg: Config) -> Iterator[S3Service | None]:
    """One SeaweedFS for the whole run when an S3 server is in it, else None."""
    if not any(n in S3_SERVER_NAMES for n in cfg.servers):
        yield None
        return
    with (
        tempfile.TemporaryDirectory(prefix="filegate-bench-s3-") as workdir,
        seaweedfs(Path(workdir)) as service,
    ):
        yield service


def _record(
    cfg: Config, started_at: datetime, installed: peers.Peers | None, s3: S3Service | None
) -> dict[str, Any]:
    """What the run is: its settings, the machine, the code and versions measured."""
    versions = {"filegate": filegate.__version__, **(installed.versions if installed else {})}
    if s3 is not None:
        versions |= {"boto3 (filegate)": version("boto3"), "seaweedfs": s3.version}
    return {
        "date": started_at.isoformat(timespec="seconds"),
        "preset": cfg.preset,
        "config": asdict(cfg),
        "machine": machine(),
        "git": _git(),
        "versions": versions,
        "loadavg_start": _loadavg(),
        "workloads": {},
    }


def _check_services(cfg: Config) -> None:
    """Fail at once, not after minutes of other servers, when filegate-pg cannot run."""
    if "filegate-pg" not in cfg.servers:
        return
    problem = postgres_and_redis_problem()
    if problem:
        others = ",".join(n for n in cfg.servers if n != "filegate-pg")
        raise SystemExit(
            f"filegate-pg: {problem.rstrip('.')}. Start it, or leave filegate-pg out: "
            f"--servers {others}"
        )


def run(cfg: Config) -> dict[str, Any]:
    _check_services(cfg)
    deadline = Deadline(cfg.max_minutes)
    needs_peers = any(n in ("tus-node", "tuspyserver", "tus-node-s3") for n in cfg.servers)
    installed = peers.install() if needs_peers else None
    chosen = [w for w in WORKLOADS if not cfg.workloads or w.key in cfg.workloads]
    with object_storage(cfg) as s3:
        started_at = datetime.now(UTC)
        results = _record(cfg, started_at, installed, s3)
        fleet = Fleet(installed, shared=not cfg.fresh_servers, s3=s3)
        try:
            for workload in chosen:
                if _servers_for(workload, cfg):
                    results["workloads"][workload.key] = run_workload(
                        workload, cfg, fleet, deadline
                    )
            if not cfg.workloads or "memory_curve" in cfg.workloads:
                results["memory_curve"] = memory_curve(cfg, fleet, deadline)
        finally:
            fleet.close()
    results["loadavg_end"] = _loadavg()
    results["minutes"] = round((datetime.now(UTC) - started_at).total_seconds() / 60, 2)
    results["truncated"] = deadline.passed()
    results["inspection"] = report.latest_inspection()
    results["targets"] = report.targets(results)
    return results


# --- command line --------------------------------------------------------------------------

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": MIB, "G": GIB}


def parse_size(text: str) -> int:
    """``100M``, ``1G``, ``64MiB``, ``4096`` -> bytes (binary units)."""
    match = _SIZE_RE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 100M, 1G, 64MiB)")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _size_text(size: int) -> str:
    return report.size_text(size)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="Benchmark filegate against its peers."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes: proves the harness works")
    parser.add_argument("--rounds", type=int, help="timed rounds per workload (default 5)")
    parser.add_argument(
        "--sizes", type=parse_size, nargs="+", help="memory-curve sizes (default 100M 1G 4G)"
    )
    parser.add_argument("--stream-size", type=parse_size, help="single upload size (1G)")
    parser.add_argument("--chunk-size", type=parse_size, help="PATCH size, chunked (8M)")
    parser.add_argument("--small-count", type=int, help="uploads, concurrent case (200)")
    parser.add_argument("--small-size", type=parse_size, help="upload size, concurrent (1M)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients (16)")
    parser.add_argument("--clean-size", type=parse_size, help="time-to-clean file size (1M)")
    parser.add_argument("--clean-count", type=int, help="time-to-clean uploads per round (20)")
    parser.add_argument(
        "--servers",
        help=f"comma-separated subset of {','.join(ALL_SERVER_NAMES)} "
        f"(default {','.join(SERVER_NAMES)})",
    )
    parser.add_argument(
        "--s3",
        action="store_true",
        help=f"also {' and '.join(S3_SERVER_NAMES)}: filegate and @tus/server + @tus/s3-store "
        "on one SeaweedFS (weed, from uv.lock)",
    )
    parser.add_argument(
        "--workloads",
        help=f"comma-separated subset of {','.join((*WORKLOAD_KEYS, 'memory_curve'))}",
    )
    parser.add_argument("--max-minutes", type=float, help="stop starting new runs after this")
    parser.add_argument("--out-dir", type=Path, help="where the results JSON goes")
    parser.add_argument("--docs-dir", type=Path, help="where benchmarks.md and .png go")
    return parser


def config_from(args: argparse.Namespace) -> Config:
    cfg = PRESETS["quick" if args.quick else "smoke" if args.smoke else "full"]
    overrides: dict[str, Any] = {
        "rounds": args.rounds,
        "stream_size": args.stream_size,
        "chunk_size": args.chunk_size,
        "small_count": args.small_count,
        "small_size": args.small_size,
        "concurrency": args.concurrency,
        "clean_size": args.clean_size,
        "clean_count": args.clean_count,
        "max_minutes": args.max_minutes,
        "curve_sizes": tuple(args.sizes) if args.sizes else None,
        "servers": _servers(args, cfg.servers),
        "workloads": _names(args.workloads, (*WORKLOAD_KEYS, "memory_curve"), "workload"),
    }
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if min(cfg.rounds, cfg.concurrency, cfg.small_count, cfg.clean_count) < 1:
        raise SystemExit("rounds, concurrency, small-count and clean-count must be at least 1")
    return cfg


def _servers(args: argparse.Namespace, default: tuple[str, ...]) -> tuple[str, ...]:
    """``--servers`` (or the default set), and with ``--s3`` the S3 servers too."""
    chosen = _names(args.servers, ALL_SERVER_NAMES, "server") or default
    if args.s3:
        chosen += tuple(n for n in S3_SERVER_NAMES if n not in chosen)
    return chosen


def _names(text: str | None, known: Sequence[str], what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    cfg = config_from(args)
    published = cfg.preset == "full"
    scratch = REPO / "bench" / ".peers" / "runs" / cfg.preset
    out_dir = args.out_dir or (REPO / "bench" / "results" if published else scratch)
    docs_dir = args.docs_dir or (REPO / "docs" if published else scratch)
    results = run(cfg)
    results["command"] = shlex.join(["python", "-m", "bench.run", *argv])
    written = report.write(results, out_dir, docs_dir)
    for path in written:
        _say(f"wrote {path}")
    print(report.summary_text(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
