"""Which S3 client for the object-storage backend: boto3 or obstore, against a real SeaweedFS.

``python -m bench.s3_clients`` starts SeaweedFS with the tests' fixture
(``tests/support/seaweed.py``), then, per round and per client, each in a subprocess of its own
(so one client's memory never counts for the other):

- ``upload``: a 1 GiB object streamed from a generator of 1 MiB blocks as a multipart upload in
  8 MiB parts, one part at a time (as filegate's ``ObjectWriter`` would write it);
- ``download``: a ranged GET of it (from 1 MiB to the end), streamed in 1 MiB chunks;
- ``small``: 200 PutObjects of 1 MiB, one after the other.

For each it records wall time, the subprocess's CPU seconds (Rust threads included) and its peak
RSS growth over the operation (``VmHWM`` after, less ``VmRSS`` before, with ``VmHWM`` reset via
``clear_refs``), and reports the median of the rounds (default 3), alternating the clients.

The clients, each in its default configuration and in a "lean" one:

- ``boto3``: the low-level calls (``create_multipart_upload``/``upload_part``/
  ``complete_multipart_upload``, ``get_object(Range=)`` + ``iter_chunks``). Over plain HTTP (this
  loopback) boto3 SHA-256-signs every body and, by default, also adds a CRC32 checksum;
  ``boto3-lean`` turns both off (``payload_signing_enabled=False``, checksums "when_required").
- ``obstore`` (the Rust ``object_store`` crate): ``open_writer(buffer_size=8 MiB,
  max_concurrency=1)`` and ``get(options={"range": ...}).stream()``. It SHA-256-signs bodies by
  default; ``obstore-lean`` sets ``unsigned_payload``.

obstore is no dependency of filegate: the harness installs it, pinned, into a venv of its own in
``bench/.peers/obstore`` (ignored by git) with the project's uv, or uses ``--obstore-python``.
MB are 10^6 bytes; MiB 2^20.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef
    from tests.support.seaweed import S3Server

REPO = Path(__file__).resolve().parent.parent
OBSTORE_VENV = REPO / "bench" / ".peers" / "obstore"
OBSTORE_VERSION = "0.12.1"
OBSTORE_REQUIREMENT = f"obstore=={OBSTORE_VERSION}"
MIB = 1 << 20
MB = 1_000_000
CLIENTS = ("boto3", "boto3-lean", "obstore", "obstore-lean")
OPERATIONS = ("upload", "download", "small")
WORKER_TIMEOUT = 180.0
INSTALL_TIMEOUT = 300.0


# --- the worker: one operation of one client, in a process of its own ---------------------------
# Only the standard library at module level: the obstore worker runs in a venv without boto3.


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (``clear_refs`` 5, Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def blocks(size: int, block: bytes) -> Iterator[bytes]:
    """``size`` bytes of incompressible data as 1 MiB blocks, each a new ``bytes`` object.

    A new object per block, as reads from a socket are: a client that keeps references to
    the blocks it buffers (obstore does, zero-copy) then holds as much memory as one that copies.
    """
    view = memoryview(block)
    for offset in range(0, size, len(block)):
        yield bytes(view[: min(len(block), size - offset)])


class Boto3Client:
    def __init__(self, job: dict[str, Any]) -> None:
        import boto3  # noqa: PLC0415 - the obstore worker's venv has no boto3
        from botocore.config import Config  # noqa: PLC0415

        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        if job["client"] == "boto3-lean":
            # No SHA-256 of each body for the signature, no CRC32 checksum: no hashing at all.
            config = config.merge(
                Config(
                    s3={"addressing_style": "path", "payload_signing_enabled": False},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
            )
        session = boto3.session.Session(
            aws_access_key_id=job["access_key"],
            aws_secret_access_key=job["secret_key"],
            region_name=job["region"],
        )
        self.s3 = session.client("s3", endpoint_url=job["endpoint_url"], config=config)
        self.bucket: str = job["bucket"]
        self.s3.head_bucket(Bucket=self.bucket)  # warm: models loaded, connection open

    def upload(self, key: str, data: Iterator[bytes], part_size: int) -> None:
        """Blocks into a bytearray (boto3 takes one as a body, no copy) sent at ``part_size``."""
        upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts: list[CompletedPartTypeDef] = []
        buffer = bytearray()

        def send() -> None:
            number = len(parts) + 1
            # botocore validates bytearray as a body; the stubs name only bytes and IO.
            body: Any = buffer
            etag = self.s3.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=body
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})

        try:
            for chunk in data:
                buffer += chunk
                if len(buffer) >= part_size:
                    send()
                    buffer = bytearray()
            if buffer or not parts:
                send()
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
            raise

    def download(self, key: str, start: int, end: int) -> int:
        body = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        received = 0
        for chunk in body["Body"].iter_chunks(MIB):
            received += len(chunk)
        return received

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)


class ObstoreClient:
    def __init__(self, job: dict[str, Any]) -> None:
        # Only the obstore worker's venv has obstore (so mypy may find no stubs).
        import obstore  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
        from obstore.store import S3Store  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415

        self.obstore = obstore
        self.store = S3Store(
            job["bucket"],
            endpoint=job["endpoint_url"],
            access_key_id=job["access_key"],
            secret_access_key=job["secret_key"],
            region=job["region"],
            virtual_hosted_style_request=False,
            unsigned_payload=job["client"] == "obstore-lean",
            client_options={"allow_http": True, "connect_timeout": "2s", "timeout": "60s"},
        )
        obstore.list(self.store, prefix="warm/").collect()  # warm: connection open

    def upload(self, key: str, data: Iterator[bytes], part_size: int) -> None:
        with self.obstore.open_writer(
            self.store, key, buffer_size=part_size, max_concurrency=1
        ) as writer:
            for chunk in data:
                writer.write(chunk)

    def download(self, key: str, start: int, end: int) -> int:
        result = self.obstore.get(self.store, key, options={"range": (start, end)})
        received = 0
        for chunk in result.stream(min_chunk_size=MIB):
            received += len(chunk)
        return received

    def put(self, key: str, data: bytes) -> None:
        self.obstore.put(self.store, key, data)


def _versions(client: str) -> dict[str, str]:
    names = ("boto3", "botocore") if client.startswith("boto3") else ("obstore",)
    return {name: version(name) for name in names}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Set the client up, then measure one operation: wall and CPU seconds, peak RSS growth."""
    client: Boto3Client | ObstoreClient = (
        Boto3Client(job) if job["client"].startswith("boto3") else ObstoreClient(job)
    )
    block = os.urandom(MIB)
    size: int = job["size"]
    key: str = job["key"]
    part_size: int = job["part_size"]
    count: int = job["count"]
    operation: Callable[[], int]
    if job["operation"] == "upload":

        def operation() -> int:
            client.upload(key, blocks(size, block), part_size)
            return size

    elif job["operation"] == "download":

        def operation() -> int:
            received = client.download(key, MIB, size)
            if received != size - MIB:
                raise RuntimeError(f"downloaded {received} bytes, expected {size - MIB}")
            return received

    else:

        def operation() -> int:
            for number in range(count):
                client.put(f"{key}/{number:04d}", block)
            return count * MIB

    rss_kb = _status_kb("VmRSS")
    _reset_peak()
    cpu, started = _cpu_seconds(), time.perf_counter()
    moved = operation()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_s": _cpu_seconds() - cpu,
        "bytes": moved,
        "baseline_rss_mb": rss_kb * 1024 / MB,
        "peak_growth_mb": (_status_kb("VmHWM") - rss_kb) * 1024 / MB,
        "versions": _versions(job["client"]),
    }


# --- the harness ----------------------------------------------------------------------------------


def obstore_python(explicit: Path | None) -> Path:
    """The interpreter of a venv with obstore: ``explicit``, or one installed here, pinned."""
    if explicit is not None:
        return explicit
    python = OBSTORE_VENV / "bin" / "python"
    stamp = OBSTORE_VENV / ".installed"
    if stamp.is_file() and stamp.read_text().strip() == OBSTORE_VERSION:
        return python
    uv = Path(sys.executable).parent / "uv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    commands = [
        [str(uv), "venv", "--quiet", "--python", sys.executable, str(OBSTORE_VENV)],
        [str(uv), "pip", "install", "--quiet", "--python", str(python), OBSTORE_REQUIREMENT],
    ]
    for command in commands:
        subprocess.run(command, check=True, env=env, timeout=INSTALL_TIMEOUT)  # noqa: S603
    stamp.write_text(OBSTORE_VERSION)
    return python


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(python: Path, job: dict[str, Any]) -> dict[str, Any]:
    command = [str(python), "-m", "bench.s3_clients", "--worker", json.dumps(job)]
    result = subprocess.run(  # noqa: S603 - argv built here
        command, cwd=REPO, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{job['client']} {job['operation']} failed:\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _row(client: str, operation: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    def median(field: str) -> float:
        return float(statistics.median(s[field] for s in samples))

    rates = [s["bytes"] / s["seconds"] / MB for s in samples]
    return {
        "client": client,
        "operation": operation,
        "mb_per_s": statistics.median(rates),
        "mb_per_s_range": [min(rates), max(rates)],
        "seconds": median("seconds"),
        "cpu_s": median("cpu_s"),
        "server_cpu_s": median("server_cpu_s"),
        "peak_growth_mb": median("peak_growth_mb"),
        "baseline_rss_mb": median("baseline_rss_mb"),
        "samples": samples,
    }


def table(rows: list[dict[str, Any]], count: int) -> str:
    lines = [
        "| client | operation | MB/s (median, range) | wall s | client CPU s | server CPU s "
        "| peak RSS growth MB | RSS before MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        low, high = row["mb_per_s_range"]
        rate = f"{row['mb_per_s']:.0f} ({low:.0f}-{high:.0f})"
        if row["operation"] == "small":
            rate += f", {count / row['seconds']:.0f} PUT/s"
        lines.append(
            f"| {row['client']} | {row['operation']} | {rate} | {row['seconds']:.2f} "
            f"| {row['cpu_s']:.2f} | {row['server_cpu_s']:.2f} | {row['peak_growth_mb']:.1f} "
            f"| {row['baseline_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def one_client(
    server: S3Server, weed: int, python: Path, client: str, *, args: argparse.Namespace, label: str
) -> dict[str, dict[str, Any]]:
    """The three operations of one client, in a bucket of their own that is emptied after."""
    from tests.support.seaweed import fresh_bucket  # noqa: PLC0415 - see measure()

    bucket = fresh_bucket(server)
    base = {
        "client": client,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "bucket": bucket,
        "size": args.size_mib * MIB,
        "part_size": args.part_mib * MIB,
        "count": args.small_count,
    }
    results: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        key = "small" if operation == "small" else "big"
        server_cpu = process_cpu_seconds(weed)
        result = spawn(python, {**base, "operation": operation, "key": key})
        result["server_cpu_s"] = process_cpu_seconds(weed) - server_cpu
        results[operation] = result
        print(
            f"{label} {client:>12} {operation:>8}: "
            f"{result['bytes'] / result['seconds'] / MB:7.1f} MB/s, "
            f"CPU {result['cpu_s']:5.2f} s (server {result['server_cpu_s']:5.2f} s), "
            f"peak +{result['peak_growth_mb']:.1f} MB",
            flush=True,
        )
    # Keep the disk use to one client's objects.
    cleaner = server.client()
    for item in cleaner.list_objects_v2(Bucket=bucket).get("Contents", []):
        cleaner.delete_object(Bucket=bucket, Key=item["Key"])
    cleaner.delete_bucket(Bucket=bucket)
    cleaner.close()
    return results


def measure(args: argparse.Namespace) -> dict[str, Any]:
    # Here, not at the top: the obstore worker imports this module in a venv without boto3.
    from tests.support.seaweed import running_seaweedfs  # noqa: PLC0415

    from bench.s3 import weed_pid  # noqa: PLC0415

    clients = CLIENTS if args.lean else ("boto3", "obstore")
    pythons = {
        client: obstore_python(args.obstore_python)
        if client.startswith("obstore")
        else Path(sys.executable)
        for client in clients
    }
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    started = time.monotonic()
    rounds = 0
    with (
        tempfile.TemporaryDirectory(prefix="s3-clients-") as workdir,
        running_seaweedfs(Path(workdir) / "seaweedfs") as server,
    ):
        weed = weed_pid()
        while rounds < args.rounds:
            elapsed = time.monotonic() - started
            if rounds and elapsed + elapsed / rounds > args.budget_s:
                print(f"stopping after {rounds} rounds: the next would pass {args.budget_s} s")
                break
            # Alternate the order, so neither client always runs on a fresher server.
            order = clients if rounds % 2 == 0 else tuple(reversed(clients))
            for client in order:
                label = f"round {rounds + 1}/{args.rounds}"
                for operation, result in one_client(
                    server, weed, pythons[client], client, args=args, label=label
                ).items():
                    samples.setdefault((client, operation), []).append(result)
            rounds += 1
    rows = [_row(c, o, samples[(c, o)]) for c in clients for o in OPERATIONS]
    versions: dict[str, str] = {}
    for row in rows:
        versions.update(row["samples"][0]["versions"])
    return {
        "size_mib": args.size_mib,
        "part_mib": args.part_mib,
        "small_count": args.small_count,
        "rounds": rounds,
        "total_s": time.monotonic() - started,
        "versions": versions,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024, help="the big object (MiB)")
    parser.add_argument("--part-mib", type=int, default=8, help="multipart part size (MiB)")
    parser.add_argument("--small-count", type=int, default=200, help="1 MiB PutObjects")
    parser.add_argument("--obstore-python", type=Path, help="a python with obstore installed")
    parser.add_argument(
        "--lean", action="store_true", help="also boto3-lean and obstore-lean (see above)"
    )
    parser.add_argument(
        "--budget-s", type=float, default=285.0, help="start no round that would end past this"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(run_job(json.loads(args.worker))))
        return
    results = measure(args)
    print()
    print(table(results["rows"], args.small_count))
    print(
        f"\n{results['rounds']} rounds, {args.size_mib} MiB in {args.part_mib} MiB parts, "
        f"{args.small_count} x 1 MiB PUT; versions {results['versions']}; "
        f"total {results['total_s']:.0f} s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
