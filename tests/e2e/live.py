"""A filegate server in a child process, and the raw-socket client that can misbehave towards it."""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx2 as httpx

from filegate.config import builtin_profiles

HOST = "127.0.0.1"
MIB = 1024 * 1024
# Generous: a busy 2-core CI box can take seconds to import, migrate and bind.
START_TIMEOUT = 20.0
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

    def __init__(self, root: Path, database_url: str, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.data_dir = root / "var"
        self.log_path = root / "server.log"
        self.port = 0
        self.env = _clean_environ() | {
            "FILEGATE_DATA_DIR": str(self.data_dir),
            "FILEGATE_DATABASE_URL": database_url,
            "FILEGATE_LOG_FORMAT": "json",
            **(env or {}),
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

    def start(self) -> LiveServer:
        self.run_cli("migrate")
        for _ in range(BIND_ATTEMPTS):
            self.port = free_port()
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
        """A new API key: by contract, alone on the last line of standard output."""
        result = self.run_cli("keys", "create", "--tenant", tenant, "--scopes", scopes)
        return result.stdout.splitlines()[-1]

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
        """The JSON log lines so far (the startup banner and other plain lines are skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line still being written
        return events

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
                "--embedded-worker",
            ],
            env=self.env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
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
