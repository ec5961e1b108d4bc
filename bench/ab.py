"""Compare this checkout's filegate with another revision's, in one run, alternating.

``python -m bench.ab --against REV [--workload tus_concurrent] [--rounds 4] [--[no-]worker]``
checks REV out into a temporary git worktree, starts both servers side by side (each as the
benchmark starts filegate, the other one from REV's ``src``), runs the workload on them in
turn (A B A B ...) and prints per server the median and range of the throughput and of the
server CPU per run. The worker runs as ``make bench`` runs it for that workload (not for the
accept path, the tus and direct uploads; for ``pipeline`` and ``time_to_clean``) unless
``--worker`` or ``--no-worker`` says otherwise. A change to the hot path is judged by these
ratios, measured together on this noisy machine, never by numbers taken at different times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import report, run
from bench.servers import REPO, FilegateServer

ROUNDS = 4


def _worktree(revision: str, into: Path) -> Path:
    command = ["git", "-C", str(REPO), "worktree", "add", "--detach", str(into), revision]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - argv built here
    return into / "src"


def _drop_worktree(path: Path) -> None:
    command = ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)]
    subprocess.run(command, check=False, capture_output=True)  # noqa: S603 - argv built here


def _line(name: str, field: str, samples: list[dict[str, float]]) -> str:
    values = [s[field] for s in samples]
    cpu = [s["cpu_s"] for s in samples]
    return (
        f"{name:>12}: {field} {statistics.median(values):8.1f} "
        f"({min(values):.1f}-{max(values):.1f}), server CPU s {statistics.median(cpu):6.2f} "
        f"({min(cpu):.2f}-{max(cpu):.2f}), errors {sum(s.get('errors', 0.0) for s in samples):.0f}"
    )


def compare(
    revision: str, workload_key: str, rounds: int, worker: bool, cfg: run.Config | None = None
) -> str:
    workload = next(w for w in run.WORKLOADS if w.key == workload_key)
    cfg = cfg or run.PRESETS["full"]
    amount = workload.amount(cfg)
    with tempfile.TemporaryDirectory(prefix="filegate-ab-") as scratch:
        checkout = Path(scratch) / "other"
        servers = {
            revision: FilegateServer(_worktree(revision, checkout), inspection=worker),
            "this checkout": FilegateServer(inspection=worker),
        }
        try:
            for server in servers.values():
                server.start()
                run.measured(workload, server, workload.warmup(cfg), cfg)
            samples: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
            for _ in range(rounds):
                for name, server in servers.items():
                    samples[name].append(run.measured(workload, server, amount, cfg))
        finally:
            for server in servers.values():
                server.stop()
            _drop_worktree(checkout)
    first = next(iter(samples.values()))[0]
    field = next(f for f in ("uploads_s", "mib_s", "clean_p50_ms") if f in first)
    name = workload.title.format(chunk=report.size_text(cfg.chunk_size))
    title = f"{name}, {rounds} rounds, worker {'on' if worker else 'off'}"
    return "\n".join([title, *(_line(name, field, s) for name, s in samples.items())])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--against", required=True, help="a git revision, e.g. HEAD~1 or main")
    parser.add_argument("--workload", choices=run.WORKLOAD_KEYS, default="tus_concurrent")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        help="inspect during the runs (default: as make bench runs the workload)",
    )
    args = parser.parse_args(argv)
    workload = next(w for w in run.WORKLOADS if w.key == args.workload)
    worker = workload.inspection if args.worker is None else args.worker
    print(compare(args.against, args.workload, args.rounds, worker=worker))
    return 0


if __name__ == "__main__":
    sys.exit(main())
