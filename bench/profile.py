"""Profile filegate's upload path with py-spy while one benchmark workload runs against it.

``python -m bench.profile [--workload tus_stream] [--size 1G] [--gil]`` starts filegate as the
benchmark does, warms it up, samples every thread of the server and its children with
``py-spy record`` during one run, and prints the frames with the most samples: self time
(where the samples landed) and inclusive time (what they were under). The collapsed stacks are
kept in ``bench/.peers/runs/profile-<workload>.txt`` for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import run
from bench.servers import FilegateServer

OUT_DIR = Path(__file__).resolve().parent / ".peers" / "runs"
RATE = 250
# py-spy needs a moment to attach before the workload starts, and to write after SIGINT.
ATTACH_SECONDS = 1.5
STOP_TIMEOUT = 60.0
_LINE = re.compile(r":\d+\)$")


def top_frames(collapsed: Path, limit: int = 25) -> str:
    """Self and inclusive sample shares per frame (line numbers folded) from collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        thread = next((f for f in frames if f.startswith("thread (")), "thread ?")
        threads[re.sub(r"^thread \(\d+\): ", "", thread)] += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            if "filegate/" in frame:
                under[frame] += samples
    if not total:
        return "no samples"

    def table(counter: collections.Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(limit)]

    return "\n".join(
        [
            f"{total} samples",
            "-- by thread",
            *table(threads),
            "-- self",
            *table(own),
            "-- inclusive (filegate's own frames)",
            *table(under),
        ]
    )


def profile(workload_key: str, amount: int, flags: Sequence[str], inspection: bool = True) -> Path:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workload = next(w for w in run.WORKLOADS if w.key == workload_key)
    # ``amount`` is bytes or uploads, whichever the workload takes.
    cfg = run.Config(stream_size=amount, small_count=amount, clean_count=amount)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    output = OUT_DIR / f"profile-{workload_key}.txt"
    with FilegateServer(inspection=inspection) as server:
        run.measured(workload, server, workload.warmup(cfg), cfg)
        command = [py_spy, "record", "--pid", str(server.pid), "--subprocesses", "--threads"]
        command += ["--rate", str(RATE), "--format", "raw", "--output", str(output)]
        command += flags
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        try:
            time.sleep(ATTACH_SECONDS)
            sample = run.measured(workload, server, amount, cfg)
        finally:
            spy.send_signal(signal.SIGINT)
            _, errors = spy.communicate(timeout=STOP_TIMEOUT)
    print(f"{workload_key}: {run.brief(sample)}", file=sys.stderr)
    if not output.exists():
        raise SystemExit(f"py-spy wrote nothing: {errors.decode(errors='replace')}")
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--workload", choices=run.WORKLOAD_KEYS, default="tus_stream")
    parser.add_argument(
        "--size",
        type=run.parse_size,
        help="bytes (streams) or uploads (tus_concurrent, pipeline, time_to_clean); "
        "default: as make bench",
    )
    parser.add_argument("--gil", action="store_true", help="only samples holding the GIL")
    parser.add_argument(
        "--idle", action="store_true", help="also waiting threads (fsync, locks): wall time"
    )
    parser.add_argument(
        "--no-worker", action="store_true", help="no embedded worker: the accept path alone"
    )
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    workload = next(w for w in run.WORKLOADS if w.key == args.workload)
    amount = args.size or workload.amount(run.PRESETS["full"])
    flags = [flag for flag, on in (("--gil", args.gil), ("--idle", args.idle)) if on]
    output = profile(args.workload, amount, flags, inspection=not args.no_worker)
    print(top_frames(output, args.top))
    print(f"collapsed stacks: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
