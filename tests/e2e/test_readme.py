"""The README, run verbatim: `make run` on a terminal, then every shell block against it.

The blocks run in one bash process, in order, in a scratch directory that holds this
checkout's Makefile, sources and .venv (so `make run` and `.venv/bin/filegate` work as on a
fresh clone, and nothing lands in the checkout). The server runs under a pseudo-terminal, as
for a person: its output must stay short and readable.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support.services import require_service

ROOT = Path(__file__).parents[2]
PORT = 8000  # the README's address, verbatim
SHARED = ("Makefile", "pyproject.toml", "uv.lock", "src", ".venv", "README.md")
# `make run` and one upload on a terminal: the bound.
MAX_LINES_FOR_ONE_UPLOAD = 5
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def shell_blocks(text: str) -> list[str]:
    """The README's ```sh blocks, except the quickstart (this test runs `make run` itself)."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    return [b for b in blocks if not re.search(r"^make (run|test)\b", b, flags=re.MULTILINE)]


class Terminal:
    """A child process whose stdout and stderr are a pseudo-terminal; its output is kept."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._master], [], [], 0.2)
            if not ready:
                if self.process.poll() is not None:
                    return
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    def lines(self) -> list[str]:
        text = _ANSI.sub("", b"".join(self._chunks).decode(errors="replace"))
        return [line for line in text.replace("\r", "").splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)
        os.close(self._master)


def _port_free() -> None:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", PORT))


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[tuple[Terminal, Path]]:
    require_service(f"port {PORT} (the README's address)", "", lambda _: _port_free())
    # The scratch directory shares this checkout's .venv: `make run` there must find it up to
    # date, or uv would reinstall the project from the scratch path and break the checkout's.
    subprocess.run(["make", "-s", "install-run"], cwd=ROOT, check=True, timeout=600)
    for name in SHARED:
        (tmp_path / name).symlink_to(ROOT / name)
    assert subprocess.run(["make", "-q", "install-run"], cwd=tmp_path, check=False).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILEGATE_", "MAKE"))}
    env["TERM"] = "dumb"
    terminal = Terminal(["make", "run"], tmp_path, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert terminal.process.poll() is None, "\n".join(terminal.lines())
            assert time.monotonic() < deadline, "\n".join(terminal.lines())
            time.sleep(0.2)
        yield terminal, tmp_path
    finally:
        terminal.stop()


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEGATE_")}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_readme_shell_block_works_verbatim_against_make_run(
    make_run: tuple[Terminal, Path],
) -> None:
    terminal, workdir = make_run
    _one_upload_prints_a_few_readable_lines(terminal, workdir)
    blocks = shell_blocks((ROOT / "README.md").read_text())
    assert "keys create" in blocks[0]  # the walkthrough makes the key the others use
    result = _bash("\n".join(blocks), workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "identical" in result.stdout
    assert "imported 2 new files" in result.stdout
    assert "imported 1 new file " in result.stdout, result.stdout[-2000:]
    assert "whsec_" in result.stdout


def _one_upload_prints_a_few_readable_lines(terminal: Terminal, workdir: Path) -> None:
    made = _bash(
        ".venv/bin/filegate keys create --tenant first --scopes upload | tail -n 1", workdir
    )
    key = made.stdout.strip()
    files = {"file": ("hello.txt", b"hello, filegate\n", "text/plain")}
    answer = httpx.post(
        f"http://127.0.0.1:{PORT}/v1/files",
        files=files,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 60
    while not any("inspection.decided" in line for line in terminal.lines()):
        assert time.monotonic() < deadline, terminal.lines()
        time.sleep(0.2)
    time.sleep(1)  # anything else the upload would print
    shown = terminal.lines()
    print("make run + one upload, on a terminal:\n" + "\n".join(shown))
    assert len(shown) < MAX_LINES_FOR_ONE_UPLOAD, shown
    assert not any(line.lstrip().startswith("{") for line in shown)  # readable, not JSON
