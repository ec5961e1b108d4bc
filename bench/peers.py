"""Install the peer servers into ``bench/.peers/`` (ignored by git), pinned, and only when needed.

- ``bench/.peers/node``: ``@tus/server`` with ``@tus/file-store`` and ``@tus/s3-store`` from
  the committed ``bench/peers/package.json`` and ``package-lock.json`` (``npm ci``), plus
  ``tus_server.mjs`` (on disk) and ``tus_s3_server.mjs`` (on S3).
- ``bench/.peers/py``: a venv with ``tuspyserver`` and uvicorn, pinned in
  ``bench/peers/requirements.txt``.

Each install leaves a stamp (the sha256 of its pinned inputs); a matching stamp skips the install.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PINNED_DIR = BENCH_DIR / "peers"
PEERS_DIR = BENCH_DIR / ".peers"
NODE_DIR = PEERS_DIR / "node"
PY_DIR = PEERS_DIR / "py"
NODE_FILES = ("package.json", "package-lock.json", "tus_server.mjs", "tus_s3_server.mjs")
STAMP = ".installed"
# A cold npm or pip install on a slow link; a stuck one fails instead of hanging the run.
INSTALL_TIMEOUT = 900.0


class PeerInstallError(RuntimeError):
    """A peer could not be installed; the message names the command and its output."""


@dataclass(frozen=True)
class Peers:
    node: str
    python: Path
    tus_server_script: Path
    tus_s3_server_script: Path
    tuspy_app_dir: Path
    versions: dict[str, str]


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _fresh(directory: Path, digest: str) -> bool:
    stamp = directory / STAMP
    return stamp.is_file() and stamp.read_text().strip() == digest


def _run(command: list[str], cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerInstallError(f"{' '.join(command)}: {exc}") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise PeerInstallError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


def install_node(npm: str = "npm") -> None:
    """``npm ci`` the pinned @tus/server and its stores into ``bench/.peers/node``."""
    sources = [PINNED_DIR / name for name in NODE_FILES]
    digest = _digest(sources)
    if _fresh(NODE_DIR, digest):
        return
    if shutil.which(npm) is None:
        raise PeerInstallError(f"{npm} is not on PATH; install Node.js 20.19+ and npm")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.copyfile(source, NODE_DIR / source.name)
    _run([npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--loglevel=error"])
    (NODE_DIR / STAMP).write_text(digest + "\n")


def install_python() -> None:
    """A venv at ``bench/.peers/py`` with exactly the pinned tuspyserver and uvicorn."""
    requirements = PINNED_DIR / "requirements.txt"
    digest = _digest([requirements])
    if _fresh(PY_DIR, digest):
        return
    if PY_DIR.exists():
        shutil.rmtree(PY_DIR)
    venv.EnvBuilder(with_pip=True, clear=True).create(PY_DIR)
    pip = [str(PY_DIR / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "install", "--quiet", "--no-deps", "-r", str(requirements)])
    _run([*pip, "check"])
    (PY_DIR / STAMP).write_text(digest + "\n")


def _node_version(package: str) -> str:
    manifest = NODE_DIR / "node_modules" / package / "package.json"
    version: str = json.loads(manifest.read_text())["version"]
    return version


def _pinned_python_version(name: str) -> str:
    for line in (PINNED_DIR / "requirements.txt").read_text().splitlines():
        if line.lower().startswith(name.lower() + "=="):
            return line.split("==", 1)[1].strip()
    return "unknown"


def _node_runtime_version(node: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return result.stdout.strip() or "unknown"


def install(node: str = "node", npm: str = "npm") -> Peers:
    """Install (or reuse) both peers; returns how to run them and their versions."""
    if shutil.which(node) is None:
        raise PeerInstallError(f"{node} is not on PATH; install Node.js 20.19+")
    install_node(npm)
    install_python()
    versions = {
        "@tus/server": _node_version("@tus/server"),
        "@tus/file-store": _node_version("@tus/file-store"),
        "@tus/s3-store": _node_version("@tus/s3-store"),
        "@aws-sdk/client-s3": _node_version("@aws-sdk/client-s3"),
        "node": _node_runtime_version(node),
        "tuspyserver": _pinned_python_version("tuspyserver"),
        "uvicorn (tuspyserver)": _pinned_python_version("uvicorn"),
        "python (tuspyserver)": _venv_python_version(),
    }
    return Peers(
        node=node,
        python=PY_DIR / "bin" / "python",
        tus_server_script=NODE_DIR / "tus_server.mjs",
        tus_s3_server_script=NODE_DIR / "tus_s3_server.mjs",
        tuspy_app_dir=PINNED_DIR,
        versions=versions,
    )


def _venv_python_version() -> str:
    cfg = PY_DIR / "pyvenv.cfg"
    for line in cfg.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return value.strip()
    return "unknown"


def main() -> int:
    peers = install()
    print(json.dumps(peers.versions, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
