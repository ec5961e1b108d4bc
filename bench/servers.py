"""Each benchmarked server as a child process on a free loopback port with its own temp data dir.

A server also knows where its stored bytes are (a file in its data dir, or an object in its
bucket on the run's SeaweedFS), so results are verified outside the timing, and reads its own
CPU seconds and peak RSS from /proc. Every peer is one process (node and uvicorn are started
directly, never through npm, a shell or a reloader); filegate is its API process, its inspection
sandbox child when it inspects, and for ``filegate-pg`` a separate ``filegate worker`` process
with its own sandbox child. Children are found through /proc and counted too; the API process's
own peak RSS is kept apart as well.

``filegate-pg`` needs PostgreSQL and Redis: ``FILEGATE_BENCH_POSTGRES_URL`` (a database the
server may create databases from; default ``postgresql://postgres@127.0.0.1:5432/postgres``)
and ``FILEGATE_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). Each server gets a
fresh database and a queue name of its own, both removed when it stops.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx2 as httpx
import redis
import sqlalchemy as sa
from tests.support.services import forget_redis_keys

from bench.peers import Peers
from bench.s3 import Bucket, S3Service, with_credentials
from filegate.config import builtin_profiles
from filegate.db.engine import normalise_url

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
# A busy 2-core box can take seconds to import, migrate and bind.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 120.0
BIND_ATTEMPTS = 3
# filegate's default profile, with room for the 4 GiB upload of the memory curve.
FILEGATE_MAX_SIZE = 8 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")
HASH_CHUNK = 1 << 20
POSTGRES_URL = os.environ.get(
    "FILEGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FILEGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class ServerError(RuntimeError):
    """A server would not start, or stored something other than what was sent."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- /proc ---------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (threads' children included)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            pending.extend(int(child) for child in children)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its reaped children, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    # The command name is in parentheses and may hold spaces; fields count from after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / CLK_TCK


def status_kb(pid: int, field: str) -> int:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in lines:
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def reset_peak_rss(pid: int) -> None:
    """Reset VmHWM to the current RSS (``clear_refs`` 5), so a peak belongs to one run."""
    with open(f"/proc/{pid}/clear_refs", "w") as handle:
        handle.write("5")


def _mb(kb: int) -> float:
    return kb * 1024 / 1e6


@dataclass(frozen=True)
class Usage:
    """A server's CPU seconds so far and its peak RSS (MB, 10^6 bytes) since the last reset,
    over all its processes, and the peak RSS of its API process alone; for a server on S3,
    also the S3 server's CPU seconds so far (it works for the server)."""

    cpu_s: float
    peak_rss_mb: float
    processes: int
    api_peak_rss_mb: float
    s3_cpu_s: float | None = None


def usage(api_pid: int, *other_pids: int) -> Usage:
    """Summed over the process trees of the API process and of ``other_pids`` (a worker)."""
    tree = [p for pid in (api_pid, *other_pids) for p in process_tree(pid)]
    cpu = sum(cpu_seconds(p) for p in tree)
    # With several processes, the sum of their peaks bounds the peak of the sum.
    peak_kb = sum(status_kb(p, "VmHWM") for p in tree)
    return Usage(
        cpu_s=cpu,
        peak_rss_mb=_mb(peak_kb),
        processes=len(tree),
        api_peak_rss_mb=_mb(status_kb(api_pid, "VmHWM")),
    )


def reset_peaks(*pids: int) -> None:
    for p in (p for pid in pids for p in process_tree(pid)):
        try:
            reset_peak_rss(p)
        except FileNotFoundError:
            continue


# --- servers -------------------------------------------------------------------------------


class BenchServer:
    """One server process. Subclasses say how to start it and where its bytes land."""

    name = "server"
    tus_path = "/files/"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"filegate-bench-{self.name}-"))
        self.data_dir = self.root / "data"
        self.data_dir.mkdir()
        self.log_path = self.root / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # what subclasses provide

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Work before the first start (migrations, keys)."""

    def stored_file(self, upload_id: str) -> Path:
        return self.data_dir / upload_id

    def stored_size(self, upload_id: str) -> int | None:
        """The stored upload's size; None when nothing is stored under its id."""
        path = self.stored_file(upload_id)
        return path.stat().st_size if path.is_file() else None

    def stored_sha256(self, upload_id: str) -> str:
        return sha256_file(self.stored_file(upload_id))

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def set_inspection(self, running: bool) -> None:
        """Whether uploads are inspected while the server runs; the peers inspect nothing."""

    # lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The API process (the server's only process, for the peers)."""
        if self._process is None:
            raise ServerError(f"{self.name} is not running")
        return self._process.pid

    @property
    def pids(self) -> tuple[int, ...]:
        """Every process the server runs as, apart from their children; the API process first."""
        return (self.pid,)

    @property
    def running(self) -> bool:
        return self._process is not None

    def start(self) -> BenchServer:
        self.prepare()
        for _ in range(BIND_ATTEMPTS):
            self.port = free_port()
            self._spawn()
            if self._wait_ready():
                return self
            self.stop(keep_root=True)
            if "in use" not in self.log_tail().lower():
                break
        tail = self.log_tail()
        self.stop()
        raise ServerError(f"{self.name} did not start; log tail:\n{tail}")

    def stop(self, keep_root: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> BenchServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def usage(self) -> Usage:
        return usage(*self.pids)

    def reset_peak(self) -> None:
        reset_peaks(*self.pids)

    # results

    def verify(self, upload_ids: Iterable[str], sha256: str, size: int) -> None:
        """Every upload stored exactly the bytes sent (by sha256); raises otherwise."""
        self.verify_stored(upload_ids, sha256, size)

    def verify_stored(self, upload_ids: Iterable[str], sha256: str, size: int) -> None:
        """The stored bytes themselves, read back and hashed."""
        for upload_id in upload_ids:
            if self.stored_size(upload_id) != size:
                raise ServerError(f"{self.name}: {upload_id} is missing or has the wrong size")
            if self.stored_sha256(upload_id) != sha256:
                raise ServerError(f"{self.name}: {upload_id} does not hash to what was sent")

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until the server has finished the work an upload caused (inspection)."""

    def discard(self, upload_ids: Iterable[str]) -> None:
        """Delete stored uploads, so the disk stays small across rounds."""
        for upload_id in upload_ids:
            for path in self.data_dir.glob(f"{upload_id}*"):
                path.unlink(missing_ok=True)

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            self.command(),
            env=self.environment(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _ready(self) -> bool:
        response = httpx.options(
            self.base_url + self.tus_path, headers={"Tus-Resumable": "1.0.0"}, timeout=2.0
        )
        return response.status_code < 500

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                if self._ready():
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False


def filegate_profiles() -> dict[str, Any]:
    """``FILEGATE_PROFILES`` replaces every profile: keep ``default``, with a larger cap.

    Only what differs from a profile's defaults is sent, so an older revision (``bench.ab``)
    that lacks a newer setting still reads it.
    """
    default = builtin_profiles()["default"].model_dump(mode="json", exclude_defaults=True)
    return {"default": {**default, "max_size": FILEGATE_MAX_SIZE}}


class FilegateServer(BenchServer):
    """``filegate serve`` as ``make run`` starts it: SQLite, local disk, embedded worker.

    With inspection off (``set_inspection(False)``, for the accept-path workloads) it runs with
    ``--no-embedded-worker``: uploads are received and queued, and nothing inspects them. The
    worker lives in the API process, so switching restarts it (same data dir, same key).
    """

    name = "filegate"
    tus_path = "/v1/tus/"

    def __init__(self, source: Path | None = None, inspection: bool = True) -> None:
        """``source``: another checkout's ``src`` to run instead of this one (bench/ab.py)."""
        super().__init__()
        self.source = source
        self.inspection = inspection
        self.key = ""
        self._client: httpx.Client | None = None

    def environment(self) -> dict[str, str]:
        # The caller's FILEGATE_* settings (a config file, a database) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}
        if self.source is not None:
            env["PYTHONPATH"] = str(self.source)
        return env | {
            "FILEGATE_DATA_DIR": str(self.data_dir),
            "FILEGATE_DATABASE_URL": f"sqlite:///{self.data_dir / 'filegate.db'}",
            "FILEGATE_PROFILES": json.dumps(filegate_profiles()),
            # The peers have no rate limits; a benchmark measures the upload path, not 429s.
            # (A revision without these settings ignores the variables.)
            "FILEGATE_QUOTAS__UPLOADS_PER_MINUTE": "0",
            "FILEGATE_QUOTAS__REQUESTS_PER_SECOND": "0",
        }

    @property
    def embedded_worker(self) -> bool:
        """Whether the API process inspects (else nothing does, or a separate worker)."""
        return self.inspection

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "filegate",
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--embedded-worker" if self.embedded_worker else "--no-embedded-worker",
        ]

    def prepare(self) -> None:
        if self.key:
            return
        self._cli("migrate")
        result = self._cli("keys", "create", "--tenant", "bench", "--scopes", "upload,read")
        self.key = result.stdout.splitlines()[-1]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def set_inspection(self, running: bool) -> None:
        if running == self.inspection:
            return
        self.inspection = running
        if self.running:
            self._switch_inspection()

    def _switch_inspection(self) -> None:
        """Apply ``self.inspection`` to the running server: here, a restart of the API."""
        self.stop(keep_root=True)
        self.start()

    def _ready(self) -> bool:
        return httpx.get(self.base_url + "/healthz", timeout=2.0).status_code == 200

    def _cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - argv built here, no shell
            [sys.executable, "-m", "filegate", *args],
            env=self.environment(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"filegate {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=60)
        return self._client

    def stop(self, keep_root: bool = False) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().stop(keep_root)

    def file(self, file_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/files/{file_id}")
        if response.status_code != 200:
            raise ServerError(f"filegate: GET /v1/files/{file_id} answered {response.status_code}")
        record: dict[str, Any] = response.json()
        return record

    def verify(self, upload_ids: Iterable[str], sha256: str, size: int) -> None:
        """By the API's own record: the sha256 filegate computed while the bytes streamed."""
        for file_id in upload_ids:
            record = self.file(file_id)
            if record["size"] != size or record["sha256"] != sha256:
                raise ServerError(f"filegate: {file_id} has size {record['size']}, wrong sha256")
            if record["state"] == "rejected":
                raise ServerError(f"filegate: {file_id} was rejected: {record['findings']}")

    def settle(self, timeout: float = 120.0) -> None:
        if not self.inspection:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            page = self.client.get("/v1/files", params={"state": "quarantined", "limit": 1})
            if page.status_code == 200 and not page.json()["items"]:
                return
            time.sleep(0.02)
        raise ServerError(f"filegate: files still quarantined after {timeout:g}s")

    def discard(self, upload_ids: Iterable[str]) -> None:
        for file_id in upload_ids:
            response = self.client.delete(f"/v1/files/{file_id}")
            if response.status_code not in (204, 404):
                raise ServerError(f"filegate: DELETE {file_id} answered {response.status_code}")


class FilegatePgServer(FilegateServer):
    """filegate in its production shape: PostgreSQL, a Redis queue and a separate
    ``filegate worker`` process (local disk, the same profile and quotas as ``filegate``).

    The API process never inspects (``--no-embedded-worker``); with inspection on, the worker
    process runs beside it, and with it off the worker is stopped, so queued jobs wait in Redis.
    Usage counts the API's and the worker's process trees; ``api_peak_rss_mb`` the API alone.
    """

    name = "filegate-pg"

    def __init__(self, inspection: bool = True) -> None:
        super().__init__(inspection=inspection)
        suffix = uuid.uuid4().hex[:12]
        self.database = f"filegate_bench_{suffix}"
        self.queue_name = f"filegate-bench-{suffix}"
        self.worker_log_path = self.root / "worker.log"
        self._database_created = False
        self._worker: subprocess.Popen[bytes] | None = None
        self._worker_log: IO[bytes] | None = None

    @property
    def database_url(self) -> str:
        return f"{POSTGRES_URL.rsplit('/', 1)[0]}/{self.database}"

    @property
    def embedded_worker(self) -> bool:
        return False

    def environment(self) -> dict[str, str]:
        return super().environment() | {
            "FILEGATE_DATABASE_URL": self.database_url,
            "FILEGATE_QUEUE_URL": REDIS_URL,
            "FILEGATE_QUEUE_NAME": self.queue_name,
            "FILEGATE_LOG_FORMAT": "json",
        }

    @property
    def pids(self) -> tuple[int, ...]:
        worker = () if self._worker is None else (self._worker.pid,)
        return (self.pid, *worker)

    def prepare(self) -> None:
        if not self._database_created:
            _postgres_admin(f'CREATE DATABASE "{self.database}"')
            self._database_created = True
        super().prepare()

    def start(self) -> BenchServer:
        try:
            super().start()
            if self.inspection:
                self._start_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def _switch_inspection(self) -> None:
        if self.inspection:
            self._start_worker()
        else:
            self._stop_worker()

    def _start_worker(self) -> None:
        if self._worker is not None:
            return
        offset = self.worker_log_path.stat().st_size if self.worker_log_path.exists() else 0
        self._worker_log = self.worker_log_path.open("ab")
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "filegate", "worker"],
            env=self.environment(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._worker_log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._worker.poll() is None:
            if '"worker.started"' in self._worker_log_text(offset):
                return
            time.sleep(0.1)
        tail = "\n".join(self._worker_log_text(offset).splitlines()[-30:])
        self._stop_worker()
        raise ServerError(f"{self.name}: filegate worker did not start; log tail:\n{tail}")

    def _worker_log_text(self, offset: int) -> str:
        with self.worker_log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGINT)  # huey: finish the running job, then exit
            try:
                worker.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(STOP_TIMEOUT)
        if self._worker_log is not None:
            self._worker_log.close()
            self._worker_log = None

    def stop(self, keep_root: bool = False) -> None:
        self._stop_worker()
        super().stop(keep_root)
        if keep_root:
            return
        if self._database_created:
            _postgres_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._database_created = False
        forget_redis_keys(REDIS_URL, self.queue_name)


def _postgres_admin(statement: str) -> None:
    """One statement on ``POSTGRES_URL``'s server, outside a transaction (CREATE DATABASE)."""
    engine = sa.create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def postgres_and_redis_problem() -> str | None:
    """Why ``filegate-pg`` cannot run here (PostgreSQL or Redis unreachable), or None."""
    try:
        _postgres_admin("SELECT 1")
    except Exception as exc:  # any failure to connect is the answer
        return f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(exc).__name__}: {exc}"
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except Exception as exc:
        return f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


class TusNodeServer(BenchServer):
    """``@tus/server`` with ``@tus/file-store``, run by the machine's node."""

    name = "tus-node"

    def __init__(self, peers: Peers) -> None:
        super().__init__()
        self.peers = peers

    def command(self) -> list[str]:
        return [
            self.peers.node,
            str(self.peers.tus_server_script),
            str(self.port),
            str(self.data_dir),
        ]


class TuspyServer(BenchServer):
    """``tuspyserver`` on FastAPI, on uvicorn with httptools and uvloop, in the peer venv."""

    name = "tuspyserver"

    def __init__(self, peers: Peers) -> None:
        super().__init__()
        self.peers = peers

    def environment(self) -> dict[str, str]:
        return dict(os.environ) | {"BENCH_DATA_DIR": str(self.data_dir)}

    def command(self) -> list[str]:
        return [
            str(self.peers.python),
            "-m",
            "uvicorn",
            "tuspy_app:app",
            "--app-dir",
            str(self.peers.tuspy_app_dir),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
        ]


class RawServer(BenchServer):
    """``bench/raw_server.py``: the body straight to disk, fsync, answer. The ceiling."""

    name = "raw"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.raw_server",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
        ]

    def environment(self) -> dict[str, str]:
        path = os.environ.get("PYTHONPATH")
        return dict(os.environ) | {"PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


# The bucket holding filegate's objects: storage_url = s3://<bucket>/<FILEGATE_S3_PREFIX>.
FILEGATE_S3_PREFIX = "bench"


class S3Stored(BenchServer):
    """A server whose uploads land in a bucket of its own: hashed from there, and the bucket
    removed when the server stops for good."""

    bucket: Bucket

    def object_key(self, upload_id: str) -> str:
        raise NotImplementedError

    def stored_size(self, upload_id: str) -> int | None:
        return self.bucket.size(self.object_key(upload_id))

    def stored_sha256(self, upload_id: str) -> str:
        return self.bucket.sha256(self.object_key(upload_id))

    def usage(self) -> Usage:
        return replace(super().usage(), s3_cpu_s=cpu_seconds(self.bucket.service.pid))

    def stop(self, keep_root: bool = False) -> None:
        super().stop(keep_root)
        if not keep_root:
            self.bucket.remove()


class FilegateS3Server(S3Stored, FilegateServer):
    """filegate as above, its storage a bucket on the run's SeaweedFS, configured as
    docs/configuration.md says (``storage_url``, ``s3_*``; credentials from the environment)."""

    name = "filegate-s3"

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        super().__init__()

    def environment(self) -> dict[str, str]:
        s3 = self.bucket.service.server
        return with_credentials(super().environment(), s3) | {
            "FILEGATE_STORAGE_URL": f"s3://{self.bucket.name}/{FILEGATE_S3_PREFIX}",
            "FILEGATE_S3_ENDPOINT_URL": s3.endpoint_url,
            "FILEGATE_S3_REGION": s3.region,
            "FILEGATE_S3_ADDRESSING_STYLE": "path",
        }

    def set_inspection(self, running: bool) -> None:
        """The S3 comparison keeps its method: filegate inspects what it receives."""

    def object_key(self, upload_id: str) -> str:
        # Verified after ``settle``, so after its verdict: a clean file is in the clean area.
        return f"{FILEGATE_S3_PREFIX}/clean/{upload_id}"

    def verify(self, upload_ids: Iterable[str], sha256: str, size: int) -> None:
        """The API's record (its in-stream sha256), then the object read back from the bucket."""
        ids = list(upload_ids)
        super().verify(ids, sha256, size)
        self.verify_stored(ids, sha256, size)


class TusNodeS3Server(S3Stored, TusNodeServer):
    """``@tus/server`` with ``@tus/s3-store`` (``tus_s3_server.mjs``): an upload is the object
    named by its id, beside ``<id>.info`` (and ``<id>.part`` while a part is unfinished)."""

    name = "tus-node-s3"

    def __init__(self, peers: Peers, bucket: Bucket) -> None:
        self.bucket = bucket
        super().__init__(peers)

    def command(self) -> list[str]:
        return [self.peers.node, str(self.peers.tus_s3_server_script), str(self.port)]

    def environment(self) -> dict[str, str]:
        s3 = self.bucket.service.server
        return with_credentials(super().environment(), s3) | {
            "AWS_BUCKET": self.bucket.name,
            "AWS_REGION": s3.region,
            "AWS_ENDPOINT_URL": s3.endpoint_url,
            # @tus/s3-store buffers each part in a temp file: in this server's dir, gone with it.
            "TMPDIR": str(self.data_dir),
        }

    def object_key(self, upload_id: str) -> str:
        return upload_id

    def discard(self, upload_ids: Iterable[str]) -> None:
        ids = set(upload_ids)
        self.bucket.delete(k for k in self.bucket.object_keys() if k.split(".", 1)[0] in ids)


# filegate's two local-disk configurations: SQLite (the default) and PostgreSQL + Redis.
FILEGATE_NAMES = ("filegate", "filegate-pg")
SERVER_NAMES = (*FILEGATE_NAMES, "tus-node", "tuspyserver", "raw")
# On S3, selected with ``--s3`` (or by name): they need the run's SeaweedFS.
S3_SERVER_NAMES = ("filegate-s3", "tus-node-s3")
ALL_SERVER_NAMES = (*SERVER_NAMES, *S3_SERVER_NAMES)


# The servers that need neither the peers installed nor the run's S3 server.
_STANDALONE: dict[str, Callable[[], BenchServer]] = {
    "filegate": FilegateServer,
    "filegate-pg": FilegatePgServer,
    "raw": RawServer,
}


def make_server(name: str, peers: Peers | None, s3: S3Service | None = None) -> BenchServer:
    """A server, not yet started; one on S3 gets a fresh bucket on ``s3``."""
    standalone = _STANDALONE.get(name)
    if standalone is not None:
        return standalone()
    if name == "filegate-s3":
        return FilegateS3Server(_bucket(name, s3))
    if peers is None:
        raise ServerError(f"{name} needs the peers installed (bench/peers.py)")
    if name == "tus-node":
        return TusNodeServer(peers)
    if name == "tuspyserver":
        return TuspyServer(peers)
    if name == "tus-node-s3":
        return TusNodeS3Server(peers, _bucket(name, s3))
    raise ServerError(f"unknown server {name!r}; known: {', '.join(ALL_SERVER_NAMES)}")


def _bucket(name: str, s3: S3Service | None) -> Bucket:
    if s3 is None:
        raise ServerError(f"{name} needs the run's S3 server (bench/s3.py)")
    return Bucket.create(s3)
