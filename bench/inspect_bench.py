"""Inspection throughput: the full sandboxed pipeline on many small files and on large ones.

``python -m bench.inspect_bench`` (``make bench-inspect``) generates, in a temporary directory,
2,000 small files (PNG, text, CSV, a one-page PDF, a small docx) and a 500 MB text file (plus a
zip of 500 MB of text), runs each through a warm ``Sandbox`` as the worker does (its
``inspection_processes`` children inspecting at once, sanitised copy included, ClamAV not), and
reports files/s, MB/s, wall time and the largest sandbox child's peak RSS (``VmHWM``, reset
before each workload). It writes ``bench/results/inspect-<date>.json`` and the "Inspection
throughput" section of ``docs/benchmarks.md``. MB are 10^6 bytes.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import os
import platform
import random
import statistics
import tempfile
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf
from PIL import Image

from bench import report
from filegate.config import Settings, builtin_profiles
from filegate.inspect.base import SandboxRequest
from filegate.inspect.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
# Files written by real software (tests/realworld/SOURCES.tsv), inspected as they are.
REALWORLD = ROOT / "tests" / "realworld" / "files"
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = report.INSPECT_MARKS
MB = 1_000_000
# The default profile, with room for the large files: the point is to time the inspectors, not
# to watch file_too_large reject the upload before the content is looked at.
POLICY = dataclasses.replace(builtin_profiles()["default"].policy("default"), max_size=2 * 1024**3)
# Members of the big zip: the size of a typical exported log file.
ZIP_MEMBER = 10 * MB


# --- small files ----------------------------------------------------------------------------------


def png(n: int) -> bytes:
    image = Image.linear_gradient("L").resize((64, 48)).rotate(n % 360)
    buffer = io.BytesIO()
    Image.merge("RGB", (image, image, image)).save(buffer, "PNG")
    return buffer.getvalue()


def text(n: int) -> bytes:
    return "".join(f"note {n}, line {i}: nothing to see here\n" for i in range(40)).encode()


def csv(n: int) -> bytes:
    rows = [f"{n}-{i},region-{i % 5},{(n * 31 + i) % 97},{i * 1.5:.2f}" for i in range(50)]
    return ("id,region,units,price\n" + "\n".join(rows) + "\n").encode()


def pdf(n: int) -> bytes:
    document = pikepdf.new()
    document.add_blank_page(page_size=(612, 792))
    font = pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1)
    font.BaseFont = pikepdf.Name.Helvetica
    page = document.pages[0].obj
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = document.make_stream(b"BT /F1 12 Tf 72 720 Td (Invoice %d) Tj ET" % n)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
    'ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="'
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def docx(n: int) -> bytes:
    paragraphs = "".join(
        f"<w:p><w:r><w:t>Letter {n}, paragraph {i}</w:t></w:r></w:p>" for i in range(20)
    )
    body = f"<w:body>{paragraphs}</w:body>"
    document = f'<?xml version="1.0"?><w:document xmlns:w="{_W}">{body}</w:document>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


KINDS: list[tuple[str, Callable[[int], bytes]]] = [
    ("png", png),
    ("txt", text),
    ("csv", csv),
    ("pdf", pdf),
    ("docx", docx),
]


def small_files(directory: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` files, the kinds taking turns; returns (path, client name) pairs."""
    files = []
    for n in range(count):
        extension, build = KINDS[n % len(KINDS)]
        path = directory / f"{n:05d}"
        path.write_bytes(build(n))
        files.append((path, f"file-{n}.{extension}"))
    return files


# --- large files ----------------------------------------------------------------------------------


def log_lines(seed: int, size: int) -> Iterator[bytes]:
    """About ``size`` bytes of log-like text, 1 MB at a time; it deflates about 3:1."""
    noise = random.Random(seed)  # noqa: S311 - filler text, not secrets
    while size > 0:
        block = "".join(
            f"2024-06-01T12:{noise.randrange(60):02d}:{noise.randrange(60):02d}Z "
            f"req={noise.getrandbits(48):012x} status={noise.choice((200, 201, 304, 404))} "
            f"ms={noise.randrange(900)}\n"
            for _ in range(15_000)
        ).encode()[: min(size, MB)]
        size -= len(block)
        yield block


def big_text(path: Path, size: int) -> Path:
    """``size`` bytes of repeated lines."""
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    block = line * (MB // len(line))
    with path.open("wb") as out:
        left = size
        while left > 0:
            left -= out.write(block[:left])
    return path


def big_zip(path: Path, size: int) -> Path:
    """A zip holding ``size`` bytes of log-like text in ``ZIP_MEMBER``-sized members."""
    # Generated once and reused: a repeat 8 MB back is far outside deflate's 32 KiB window.
    pool = b"".join(log_lines(0, 8 * MB))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for member in range(max(1, size // ZIP_MEMBER)):
            with archive.open(f"logs/{member:03d}.txt", "w") as entry:
                left = ZIP_MEMBER
                while left > 0:
                    left -= entry.write(pool[: min(left, len(pool))])
    return path


# --- measuring ------------------------------------------------------------------------------------


def child_pids(sandbox: Sandbox) -> list[int]:
    pids = sandbox.pids()  # the benchmark reads the children's /proc entries
    if len(pids) != sandbox.processes:
        raise RuntimeError(f"the sandbox runs {len(pids)} of its {sandbox.processes} children")
    return pids


def reset_peak(pid: int) -> None:
    # "5" resets VmHWM to the current RSS (Linux 4.0+); harmless where it is not supported.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    return float("nan")


def content_size(path: Path) -> int:
    """What the inspectors read: a zip's members inflated, any other file as it is."""
    if not zipfile.is_zipfile(path) or path.suffix != ".zip":
        return path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def inspect(sandbox: Sandbox, path: Path, name: str, scratch: Path) -> str:
    """One job as the worker sends it; returns the verdict's state."""
    job = SandboxRequest(
        str(path), name, None, path.stat().st_size, POLICY, sanitized_path=str(scratch)
    )
    result = sandbox.run(job)
    scratch.unlink(missing_ok=True)
    return result.verdict.state.value


def workload(
    sandbox: Sandbox, files: list[tuple[Path, str]], scratch: Path, label: str
) -> dict[str, Any]:
    """The files through the sandbox, as many at once as it has children (the worker's threads
    do the same); each job its own sanitised-copy path."""
    pids = child_pids(sandbox)
    for pid in pids:
        reset_peak(pid)
    scratch.mkdir(exist_ok=True)

    def one(numbered: tuple[int, tuple[Path, str]]) -> tuple[str, str, float]:
        number, (path, name) = numbered
        started = time.perf_counter()
        state = inspect(sandbox, path, name, scratch / str(number))
        return state, name.rpartition(".")[2], time.perf_counter() - started

    states: collections.Counter[str] = collections.Counter()
    per_kind: dict[str, list[float]] = collections.defaultdict(list)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(sandbox.processes) as pool:
        for state, kind, seconds in pool.map(one, enumerate(files)):
            states[state] += 1
            per_kind[kind].append(seconds)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path, _ in files)
    content = sum(content_size(path) for path, _ in files)
    if child_pids(sandbox) != pids:
        raise RuntimeError(f"{label}: a sandbox child was restarted (a crash or a timeout)")
    return {
        "workload": label,
        "files": len(files),
        "bytes": size,
        "content_bytes": content,
        "seconds": round(seconds, 3),
        "files_per_s": round(len(files) / seconds, 1),
        "mb_per_s": round(content / MB / seconds, 1),
        "peak_rss_mb": round(max(peak_rss_mb(pid) for pid in pids), 1),
        "verdicts": dict(states),
        "median_ms": {kind: round(statistics.median(s) * 1000, 1) for kind, s in per_kind.items()},
    }


def realworld_files() -> list[tuple[Path, str]]:
    """The real-world corpus: PDFs, office files, photos, audio, video, text and archives."""
    return [(path, path.name) for path in sorted(REALWORLD.rglob("*")) if path.is_file()]


def run(
    small: int, big_mb: int, with_zip: bool, real: bool = True, processes: int | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"started": _now(), "machine": machine()}
    processes = processes or Settings().inspection_processes
    with tempfile.TemporaryDirectory(prefix="filegate-inspect-bench-") as tmp:
        directory = Path(tmp)
        scratch = directory / "sanitized"
        sandbox = Sandbox(processes=processes)
        try:
            (directory / "warm").mkdir()
            (directory / "small").mkdir()
            started = time.perf_counter()
            sandbox.start()
            # Every child warms up on one file of each kind.
            warm = small_files(directory / "warm", len(KINDS)) * processes
            if workload(sandbox, warm, scratch, "warm-up")["verdicts"] != {"clean": len(warm)}:
                raise RuntimeError("warm-up: a file was not accepted; is the sandbox up?")
            warm_up = time.perf_counter() - started
            results = [workload(sandbox, small_files(directory / "small", small), scratch, "small")]
            if real:
                results.append(workload(sandbox, realworld_files(), scratch, "realworld"))
            big = big_text(directory / "big.txt", big_mb * MB)
            results.append(workload(sandbox, [(big, "big.txt")], scratch, "big.txt"))
            big.unlink()
            if with_zip:
                archive = big_zip(directory / "big.zip", big_mb * MB)
                results.append(workload(sandbox, [(archive, "big.zip")], scratch, "big.zip"))
        finally:
            sandbox.close()
    return {
        **record,
        "processes": processes,
        "warm_up_seconds": round(warm_up, 2),
        "workloads": results,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# --- reporting ------------------------------------------------------------------------------------

DESCRIPTIONS = {
    "small": "small files (PNG, text, CSV, PDF, docx in turn)",
    "realworld": "the real-world corpus (tests/realworld: files written by real software)",
    "big.txt": "one text file",
    "big.zip": "one zip of log files, every member inflated and inspected",
}


def table(record: dict[str, Any]) -> str:
    rows = [
        "| workload | files | MB uploaded | MB inspected | wall s | files/s | MB/s inspected "
        "| sandbox peak RSS MB | verdicts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for w in record["workloads"]:
        verdicts = ", ".join(f"{n} {state}" for state, n in sorted(w["verdicts"].items()))
        rows.append(
            f"| {DESCRIPTIONS[w['workload']]} | {w['files']:,} | {w['bytes'] / MB:,.1f} | "
            f"{w['content_bytes'] / MB:,.1f} | "
            f"{w['seconds']:.2f} | {w['files_per_s']:,.1f} | {w['mb_per_s']:,.1f} | "
            f"{w['peak_rss_mb']:.0f} | {verdicts} |"
        )
    return "\n".join(rows)


NOTES = (
    "The sandbox as the worker runs it, with `inspection_processes` = {processes} children "
    "(warm-up: one file of each kind per child, {warm_up} s): as many files are inspected at "
    "once as it has children, each file by one child: names, type detection (libmagic and "
    "Magika), the code checks and the content inspectors, and a sanitised copy where the "
    "profile wants one (the default: only a file with something to remove, such as a photo's "
    "EXIF); ClamAV is not part of it. The real-world corpus is tests/realworld as it is: PDFs, "
    "office files, photos, audio and video demuxed by FFmpeg, text and archives. The profile is "
    "the default one with its size limit raised for the large files. A text file is judged by "
    "its head and tail, so its time is a constant cost whatever its size; a zip is inflated "
    "member by member and each member inspected, so its MB/s counts the inflated bytes. Peak "
    "RSS is `VmHWM` of the largest sandbox child, reset before each workload. MB are 10^6 bytes."
)


def section(record: dict[str, Any], json_path: Path) -> str:
    m = record["machine"]
    load = ", ".join(str(v) for v in m["load_average"])
    return "\n".join(
        [
            START,
            "## Inspection throughput",
            "",
            f"<!-- Generated by `make bench-inspect` (bench/inspect_bench.py) from "
            f"{json_path.relative_to(ROOT)}; do not edit by hand. -->",
            "",
            f"Run {record['started']} on {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, "
            f"Python {m['python']}; load average {load} at the start.",
            "",
            table(record),
            "",
            textwrap.fill(
                NOTES.format(
                    processes=record.get("processes", 1), warm_up=record["warm_up_seconds"]
                ),
                100,
            ),
            END,
        ]
    )


def update_docs(text: str, docs: Path = DOCS) -> None:
    """Replace the section between the markers, or append it; the rest stays as it was."""
    current = docs.read_text() if docs.exists() else "# Benchmarks\n"
    docs.write_text(report.splice(current, (START, END), text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000, help="how many small files")
    parser.add_argument("--big-mb", type=int, default=500, help="size of the large files, MB")
    parser.add_argument("--no-zip", action="store_true", help="skip the large zip")
    parser.add_argument("--no-real", action="store_true", help="skip the real-world corpus")
    parser.add_argument(
        "--processes", type=int, help="sandbox children (default: inspection_processes)"
    )
    parser.add_argument("--no-docs", action="store_true", help="print only; write nothing")
    args = parser.parse_args()
    record = run(
        args.small,
        args.big_mb,
        with_zip=not args.no_zip,
        real=not args.no_real,
        processes=args.processes,
    )
    print(table(record))
    if args.no_docs:
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"inspect-{record['started'][:10]}.json"
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    update_docs(section(record, json_path))
    print(f"wrote {json_path.relative_to(ROOT)} and {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
