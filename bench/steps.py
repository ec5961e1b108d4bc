"""Where an upload's CPU goes, by step: py-spy's collapsed stacks folded into named steps.

``bench.profile`` samples the server while a workload runs; ``steps(collapsed)`` gives every
sample one step, found by walking its stack from the innermost frame outwards and taking the
first frame that names a step (so SQL run by ``tus.advance`` counts as "offset commit", and
a log line written anywhere counts as "logging"). Multiplied by the run's measured CPU
seconds per upload, the shares are the per-request CPU broken down by step that
docs/benchmarks.md reports for the accept path.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

# (step, patterns): the first pattern found in a frame, innermost frame first, names its step.
# Order matters only between patterns that can match the same frame.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("(logging/", "(structlog/")),
    ("metrics", ("(prometheus_client/", "filegate/signals.py")),
    ("fsync (data, directories)", ("LocalAppender.sync", "_fsync_dir")),
    ("sha256 + write", ("PatchReceiver._absorb",)),
    ("auth (key, rate limit)", ("principal_for", "_authenticate")),
    ("quotas", ("admit_upload", "check_room")),
    ("create the upload row", ("create_upload (filegate",)),
    ("read the upload row", ("get_upload (filegate", "_own_upload", "reload (filegate")),
    ("offset commit", ("advance (filegate/services/tus.py",)),
    ("move to quarantine", ("LocalStorage.move", "LocalStorage.seal")),
    ("register file + job", ("register_upload", "_register (filegate")),
    ("open the object", ("PatchReceiver._open", "LocalStorage.appender")),
    ("upload lock", ("locks.py",)),
    ("thread hand-offs", ("(anyio/", "run_in_threadpool", "(concurrent/futures", "(threading.py")),
    ("body: chunks to the receiver", ("body_chunks", "PatchReceiver.write", "receive (filegate")),
    ("filegate middleware", ("filegate/web/middleware.py", "filegate/web/override.py")),
    ("HTTP server (uvicorn, httptools)", ("(uvicorn/", "filegate/web/protocol.py")),
    ("framework (Starlette, FastAPI, pydantic)", ("(starlette/", "(fastapi/", "(pydantic")),
    ("event loop", ("(asyncio/", "(selectors.py")),
)
_LINE = re.compile(r":\d+\)$")


def step_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for step, patterns in STEPS:
            if any(pattern in frame for pattern in patterns):
                return step
    return "other"


def steps(collapsed: Path, *, skip_idle: bool = True) -> dict[str, int]:
    """Samples per step. With ``skip_idle``, a thread parked waiting for work (a thread
    pool's worker in ``Condition.wait``) is not CPU and is left out."""
    counts: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        if skip_idle and frames[-1].startswith(("Condition.wait", "_PollLikeSelector.select")):
            continue
        counts[step_of(frames)] += int(count)
    return dict(counts.most_common())


def table(counts: dict[str, int], cpu_ms_per_item: float | None = None) -> str:
    """A Markdown table: step, share of samples, and ms of CPU per item if given."""
    total = sum(counts.values()) or 1
    head = "| step | share | CPU ms per upload |" if cpu_ms_per_item else "| step | share |"
    lines = [head, "| --- | --- | --- |" if cpu_ms_per_item else "| --- | --- |"]
    for step, samples in counts.items():
        share = samples / total
        row = f"| {step} | {100 * share:.1f}% |"
        if cpu_ms_per_item:
            row += f" {share * cpu_ms_per_item:.2f} |"
        lines.append(row)
    return "\n".join(lines)
