"""A filegate server in a child process, and the raw-socket client that can misbehave towards it."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import httpx2 as httpx

from filegate.config import builtin_profiles
from filegate.db import migrate
from filegate.db.engine import Database
from filegate.services import keys

HOST = "127.0.0.1"
MIB = 1024 * 1024
# Generous: a busy 2-core CI box can take seconds to import, migrate and bind.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 120.0
# Another process can take the port between our probe and the server's bind; try a fresh one.
BIND_ATTEMPTS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def profiles_env(**extra: Mapping[str, Any]) -> dict[str, str]:
    """``FILEGATE_PROFILES`` replaces every profile, so keep the built-in ones beside ``extra``."""
    profiles = {name: p.model_dump(mode="json") for name, p in builtin_profiles().items()}
    return {"FILEGATE_PROFILES": json.dumps({**profiles, **extra})}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``predicate()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


class LiveServer:
    """``filegate serve`` on a free port, on its own data dir and database; a context manager."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        env: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        name: str = "server",
        embedded_worker: bool = True,
    ) -> None:
        self.root = root
        self.embedded_worker = embedded_worker
        self.database_url = database_url
        self.data_dir = data_dir or root / "var"
        self.log_path = root / f"{name}.log"
        self.port = 0
        self._extra_env = dict(env or {})
        self.env = _clean_environ() | {
            "FILEGATE_DATA_DIR": str(self.data_dir),
            "FILEGATE_DATABASE_URL": database_url,
            "FILEGATE_LOG_FORMAT": "json",
            **self._extra_env,
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def start(self, port: int | None = None) -> LiveServer:
        """Migrate, spawn and wait until healthy; on ``port`` if given and free.

        Migrations and keys are made in this process: a CLI start costs seconds of imports,
        paid once per e2e test otherwise. The CLI commands have their own tests.
        """
        migrate.upgrade(self.database_url)
        for attempt in range(BIND_ATTEMPTS):
            self.port = port if port and attempt == 0 else free_port()
            self._spawn()
            if self._wait_healthy():
                return self
            self.stop()
            if "address already in use" not in self.log_tail().lower():
                break
        raise RuntimeError(f"filegate did not become healthy; log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)
        self.stop()

    def signal_group(self, signum: signal.Signals) -> None:
        """Signal the server's whole process group, as a terminal's Ctrl-C does."""
        os.killpg(os.getpgid(self.pid), signum)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process ends by itself, or None if it is still running."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self) -> LiveServer:
        """Stop (if still running) and start again: same data dir, database and, if free, port."""
        self.stop()
        return self.start(port=self.port)

    def sibling(self, name: str, env: Mapping[str, str] | None = None) -> LiveServer:
        """Another server process like this one, not yet started, on its data dir and database."""
        return LiveServer(
            self.root,
            self.database_url,
            {**self._extra_env, **(env or {})},
            data_dir=self.data_dir,
            name=name,
            embedded_worker=self.embedded_worker,
        )

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python -m filegate ARGS`` with the server's environment; raises with its output."""
        result = subprocess.run(
            [sys.executable, "-m", "filegate", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"filegate {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def create_key(self, tenant: str, scopes: str = "upload,read") -> str:
        """A new API key for ``tenant`` (``keys create`` itself is tested in test_live_server)."""
        database = Database(self.database_url)
        try:
            _, raw = keys.create_key(database, tenant=tenant, scopes=keys.parse_scopes(scopes))
        finally:
            database.dispose()
        return raw

    def client(self, key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def rss_kb(self) -> int:
        return self._status_kb("VmRSS")

    def rss_peak_kb(self) -> int:
        return self._status_kb("VmHWM")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def log_events(self) -> list[dict[str, Any]]:
        return json_log_events(self.log_path)

    def leftovers(self) -> list[str]:
        """Every stored entry except the (empty) per-area temp dirs: should be none at rest."""
        found = []
        for area in ("quarantine", "clean"):
            area_dir = self.storage_dir / area
            for path in area_dir.rglob("*"):
                if path != area_dir / ".tmp":
                    found.append(str(path.relative_to(self.storage_dir)))
        return sorted(found)

    def temp_files(self, area: str = "quarantine") -> list[Path]:
        tmp = self.storage_dir / area / ".tmp"
        return list(tmp.iterdir()) if tmp.is_dir() else []

    def __enter__(self) -> LiveServer:
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

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "filegate",
                "serve",
                "--port",
                str(self.port),
                "--embedded-worker" if self.embedded_worker else "--no-embedded-worker",
            ],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as under a terminal
        )

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def _status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise RuntimeError(f"{field} is not in /proc/{self.pid}/status")


def json_log_events(path: Path) -> list[dict[str, Any]]:
    """The JSON log lines so far (the startup banner and other plain lines are skipped)."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line still being written
    return events


class WorkerProcess:
    """``filegate worker`` on a server's data dir, database and queue; a context manager."""

    def __init__(self, server: LiveServer, name: str, env: Mapping[str, str] | None = None) -> None:
        self.root = server.root
        self.env = {**server.env, **(env or {})}
        self.log_path = server.root / f"{name}.log"
        self.name = name
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> WorkerProcess:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "filegate", "worker"],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_started(self, timeout: float = START_TIMEOUT * 2) -> WorkerProcess:
        wait_for(
            lambda: any(e.get("event") == "worker.started" for e in self.log_events()),
            timeout,
            f"{self.name} to start",
        )
        return self

    def wait_exit(self, timeout: float) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)
        self._close()

    def terminate(self) -> None:
        """SIGTERM: huey stops at once, without waiting for running jobs."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # huey: finish the running job, then exit
            try:
                process.wait(STOP_TIMEOUT * 3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_events(self) -> list[dict[str, Any]]:
        return json_log_events(self.log_path)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _clean_environ() -> dict[str, str]:
    # The caller's FILEGATE_* settings (a config file, a database) must not leak into the server.
    return {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def open_request(
    server: LiveServer, target: str, headers: Mapping[str, str], method: str = "POST"
) -> socket.socket:
    """Connect and send only the request line and headers; the body is up to the caller."""
    sock = socket.create_connection((HOST, server.port), timeout=30.0)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return sock


def send_chunks(sock: socket.socket, chunks: Iterable[bytes], *, finish: bool = True) -> int:
    """Send a chunked body until done, or until the server answers or stops listening.

    Returns how many body bytes went out. With ``finish=False`` the body is left open, so an
    answer can only have come from a server that judged the stream before its end.
    """
    sent = 0
    for chunk in chunks:
        if _readable(sock):
            return sent
        try:
            sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        except OSError:  # reset, broken pipe, or a full window the server stopped draining
            return sent
        sent += len(chunk)
    if finish:
        sock.sendall(b"0\r\n\r\n")
    return sent


def read_response(sock: socket.socket, timeout: float = 30.0) -> RawResponse:
    sock.settimeout(timeout)
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        body = response.read()
    finally:
        response.close()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return RawResponse(response.status, headers, body)


def _readable(sock: socket.socket) -> bool:
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


# tus: the pieces a black-box test needs besides a real tus client.

TUS_VERSION = "1.0.0"
TUS_BASE = "/v1/tus/"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
TEXT_BLOCK = MIB
_LINE = b"%07d the quick brown fox jumps over the lazy dog, 0123456789 ~!\n"
# One block of printable lines, made once; each use gets its own numbered first line.
_LINE_SIZE = len(_LINE % 0)
_BLOCK_BODY = b"".join(_LINE % n for n in range(TEXT_BLOCK // _LINE_SIZE))
_BLOCK_BODY += b"." * (TEXT_BLOCK - len(_BLOCK_BODY) - 1) + b"\n"


class TextPayload(io.RawIOBase):
    """``size`` bytes of text made on demand: cheap, seekable, and passes the text inspectors.

    Every 1 MiB block starts with its own number, so bytes stored at the wrong offset change
    the sha256 even though the rest of each block repeats.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self._pos = 0

    def block(self, index: int) -> bytes:
        header = (b"block %010d " % index).ljust(_LINE_SIZE - 1, b"-") + b"\n"
        return header + _BLOCK_BODY[_LINE_SIZE:]

    def slice(self, start: int, stop: int) -> bytes:
        stop = min(stop, self.size)
        if start >= stop:
            return b""
        first, last = start // TEXT_BLOCK, (stop - 1) // TEXT_BLOCK
        joined = b"".join(self.block(i) for i in range(first, last + 1))
        base = first * TEXT_BLOCK
        return joined[start - base : stop - base]

    def chunks(self, start: int = 0, size: int = TEXT_BLOCK) -> Iterator[bytes]:
        for position in range(start, self.size, size):
            yield self.slice(position, position + size)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()

    def write_to(self, path: Path) -> Path:
        with path.open("wb") as file:
            for chunk in self.chunks():
                file.write(chunk)
        return path

    # The file API a tus client reads from (tuspy's ``file_stream``).
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = self.slice(self._pos, self._pos + len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        self._pos += len(data)
        return len(data)


def tus_headers(key: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``Tus-Resumable``, the key's ``Authorization`` if given, and ``extra``."""
    headers = {"Tus-Resumable": TUS_VERSION}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return headers | dict(extra or {})


def tus_metadata(**pairs: str) -> str:
    return ",".join(
        f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in pairs.items()
    )


def tus_create(client: httpx.Client, length: int, **metadata: str) -> str:
    """A new upload of ``length`` bytes; returns its URL (the Location header)."""
    headers = tus_headers(
        extra={"Upload-Length": str(length), "Upload-Metadata": tus_metadata(**metadata)}
    )
    response = client.post(TUS_BASE, headers=headers)
    assert response.status_code == 201, response.text
    return response.headers["location"]


def tus_offset(client: httpx.Client, url: str) -> int:
    """The upload's offset, as HEAD reports it."""
    response = client.head(urlsplit(url).path, headers=tus_headers())
    assert response.status_code == 200, (response.status_code, response.headers)
    return int(response.headers["upload-offset"])


def upload_id_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def open_patch(server: LiveServer, url: str, key: str, offset: int, length: int) -> socket.socket:
    """A PATCH whose headers are sent and whose ``length``-byte body is up to the caller."""
    headers = tus_headers(
        key,
        {
            "Upload-Offset": str(offset),
            "Content-Type": OFFSET_OCTET_STREAM,
            "Content-Length": str(length),
        },
    )
    return open_request(server, urlsplit(url).path, headers, method="PATCH")


def inspected(client: httpx.Client, file_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The file's record once inspection has decided it."""
    record: dict[str, Any] = {}

    def decided() -> bool:
        nonlocal record
        response = client.get(f"/v1/files/{file_id}")
        assert response.status_code == 200, response.text
        record = response.json()
        return bool(record["state"] != "quarantined")

    wait_for(decided, timeout, f"inspection of {file_id}")
    return record


def clean_sha256(client: httpx.Client, file_id: str, timeout: float = 60.0) -> str:
    """Wait for the file to be inspected, require ``clean``, and hash its downloaded content."""
    record = inspected(client, file_id, timeout)
    assert record["state"] == "clean", record
    digest = hashlib.sha256()
    with client.stream("GET", f"/v1/files/{file_id}/content") as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == record["sha256"]
    return digest.hexdigest()
