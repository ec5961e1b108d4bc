"""The staging stack of deploy/compose.staging.yaml as local processes, for machines without a
Docker engine (this one, CI): ``make staging``, ``make staging-check``, ``make staging-down``.

The same topology and the same commands as the containers: a one-shot ``filegate migrate``,
two ``filegate serve`` behind nginx, two ``filegate worker``, PostgreSQL (a database of its
own on the local server), Redis (a database number of its own), clamd and SeaweedFS. The
filegate processes read the same config file (deploy/filegate.staging.toml) and the same env
file (deploy/staging.env, or one generated from deploy/staging.env.example with fresh
secrets); only the addresses differ, since every service is on 127.0.0.1 here, and each
process gets a data dir of its own, as a container would.

``up`` starts a supervisor in a session of its own and returns once everything answers;
``down`` stops the supervisor, which stops everything it started, and then checks that no
process of the stack and none of its ports is left. clamd has a local test signature (EICAR)
and no freshclam, so the stack's verify runs with ``--allow-local-signatures``.

    python -m tools.staging up|check|verify|down [--workdir var/staging]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from tests.support.clamd import running_clamd
from tests.support.seaweed import running_seaweedfs
from tools.staging_check import run_checks

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
CONFIG = DEPLOY / "filegate.staging.toml"
NGINX_CONF = DEPLOY / "nginx" / "staging.conf"
ENV_FILE = DEPLOY / "staging.env"
ENV_EXAMPLE = DEPLOY / "staging.env.example"
WORKDIR = REPO / "var" / "staging"
POSTGRES_ADMIN = os.environ.get(
    "FILEGATE_STAGING_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("FILEGATE_STAGING_REDIS", "redis://127.0.0.1:6379/9")
# Tests run their own stack beside a developer's: another database, another Redis number.
DATABASE = os.environ.get("FILEGATE_STAGING_DATABASE", "filegate_staging")
BUCKET = "filegate-staging"
START_SECONDS = 180.0
STOP_SECONDS = 60.0
APIS = ("api-1", "api-2")
WORKERS = ("worker-1", "worker-2")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _say(message: str) -> None:
    print(f"staging: {message}", flush=True)


# --- the env file ----------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (comments and blanks skipped), as compose's env_file reads them."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def staging_env(workdir: Path) -> dict[str, str]:
    """deploy/staging.env if the operator wrote one, else the example with every placeholder
    replaced by a fresh secret (kept in the workdir, mode 0600, so a restart reuses it)."""
    if ENV_FILE.exists():
        return read_env_file(ENV_FILE)
    generated = workdir / "staging.env"
    if not generated.exists():
        lines = []
        for line in ENV_EXAMPLE.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#") and "change-me" in value:
                value = value.replace("change-me", secrets.token_hex(12))
            lines.append(f"{name}{sep}{value}" if sep else line)
        generated.write_text("\n".join(lines) + "\n")
        generated.chmod(0o600)
    return read_env_file(generated)


# --- the supervisor --------------------------------------------------------------------------


class Stack:
    """Starts the services in order and stops them in reverse; the supervisor's body."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.ports: dict[str, int] = {}

    def run(self, stack: ExitStack) -> dict[str, Any]:
        env = staging_env(self.workdir)
        access = env.get("AWS_ACCESS_KEY_ID") or "FG" + secrets.token_hex(9).upper()
        secret = env.get("AWS_SECRET_ACCESS_KEY") or secrets.token_urlsafe(30)
        s3 = stack.enter_context(running_seaweedfs(self.workdir / "seaweedfs", access, secret))
        _say(f"SeaweedFS on {s3.endpoint_url}")
        scanner = stack.enter_context(running_clamd(self.workdir / "clamd"))
        _say(f"clamd on {scanner.url}")
        bucket = urlsplit(_toml_setting("storage_url") or f"s3://{BUCKET}").netloc
        s3.client().create_bucket(Bucket=bucket)
        database_url = _fresh_database()
        self.ports = {"proxy": _free_port(), **{name: _free_port() for name in APIS}}
        public_url = f"http://127.0.0.1:{self.ports['proxy']}"
        shared = {
            **env,
            "FILEGATE_CONFIG": str(CONFIG),
            "FILEGATE_DATABASE_URL": database_url,
            "FILEGATE_QUEUE_URL": REDIS,
            "FILEGATE_QUEUE_NAME": f"filegate-staging-{secrets.token_hex(4)}",
            "FILEGATE_CLAMD_URL": scanner.url,
            "FILEGATE_STORAGE_URL": env.get("FILEGATE_STORAGE_URL", f"s3://{bucket}"),
            "FILEGATE_S3_ENDPOINT_URL": s3.endpoint_url,
            "FILEGATE_S3_REGION": s3.region,
            "FILEGATE_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_EC2_METADATA_DISABLED": "true",
            # The compose file hands POSTGRES_PASSWORD to filegate as PGPASSWORD (libpq); the
            # local server trusts loopback, so it is only carried along.
            "PGPASSWORD": env.get("POSTGRES_PASSWORD", ""),
            "FILEGATE_PUBLIC_URL": public_url,
            "FILEGATE_HOST": "127.0.0.1",
            # The integration check's webhook receiver listens on loopback.
            "FILEGATE_WEBHOOK_ALLOW_INTERNAL": "true",
            # No Varnish in this stack (tests/e2e/test_varnish.py runs one): nothing to purge.
            "FILEGATE_CACHE__PURGE_URLS": "[]",
            "FILEGATE_LOG_FORMAT": "json",
        }
        (self.workdir / "env.json").write_text(json.dumps(shared, indent=1))
        (self.workdir / "env.json").chmod(0o600)
        self._once("migrate", ["migrate"], shared)
        for name in APIS:
            self._start(name, ["serve", "--port", str(self.ports[name])], shared)
        for name in WORKERS:
            self._start(name, ["worker"], shared)
        self._start_proxy()
        for name in APIS:
            _wait_http(f"http://127.0.0.1:{self.ports[name]}/healthz", name)
        _wait_http(f"{public_url}/healthz", "the proxy")
        return {
            "public_url": public_url,
            "apis": [f"http://127.0.0.1:{self.ports[name]}" for name in APIS],
            "ports": sorted(self.ports.values()),
            "database_url": database_url,
            "env": str(self.workdir / "env.json"),
        }

    def _process_env(self, shared: Mapping[str, str], name: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("FILEGATE_", "AWS_"))}
        data_dir = self.workdir / name
        data_dir.mkdir(exist_ok=True)
        return {**base, **shared, "FILEGATE_DATA_DIR": str(data_dir)}

    def _command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "filegate", *args]

    def _once(self, name: str, args: list[str], shared: Mapping[str, str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            result = subprocess.run(  # noqa: S603 - argv built here, no shell
                self._command(args),
                env=self._process_env(shared, name),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{name} exited {result.returncode}; see {name}.log")
        _say(f"{name}: done")

    def _start(self, name: str, args: list[str], shared: Mapping[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            self._command(args),
            env=self._process_env(shared, name),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append((name, process))
        _say(f"{name}: started (pid {process.pid})")

    def _start_proxy(self) -> None:
        """nginx with deploy/nginx/staging.conf, its upstreams and listen port made local."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        prefix = self.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        conf = render_nginx_conf(
            NGINX_CONF.read_text(),
            listen=self.ports["proxy"],
            upstreams={name: self.ports[name] for name in APIS},
            prefix=prefix,
            as_root=os.geteuid() == 0,
        )
        (prefix / "nginx.conf").write_text(conf)
        log = (self.workdir / "proxy.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(("proxy", process))
        _say(f"proxy: nginx on {self.ports['proxy']} (pid {process.pid})")

    def stop(self) -> None:
        """TERM to everything started, newest first; KILL what is still there after a while."""
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGQUIT if name == "proxy" else signal.SIGTERM)
        deadline = time.monotonic() + 20
        for name, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{name}: killed")
                process.kill()
                process.wait()


def render_nginx_conf(
    text: str, *, listen: int, upstreams: Mapping[str, int], prefix: Path, as_root: bool
) -> str:
    """The container's server config (a conf.d file of the nginx image) in a whole nginx.conf
    with local addresses: ``server api-1:8000`` becomes ``server 127.0.0.1:<port>``, ``listen``
    our port; nginx in the foreground, its pid, logs and temp files under ``prefix``."""
    lines = []
    for original in text.splitlines():
        line = original
        stripped = line.strip()
        if stripped.startswith("listen "):
            line = line.replace(stripped, f"listen 127.0.0.1:{listen};")
        for name, port in upstreams.items():
            line = line.replace(f"{name}:8000", f"127.0.0.1:{port}")
        lines.append("    " + line if line else line)
    temp = {
        "client_body_temp_path": "body",
        "proxy_temp_path": "proxy",
        "fastcgi_temp_path": "fastcgi",
        "uwsgi_temp_path": "uwsgi",
        "scgi_temp_path": "scgi",
    }
    head = [
        "daemon off;",
        # Workers must write the temp files under the prefix, which root owns.
        *(["user root;"] if as_root else []),
        "worker_processes 1;",
        f"pid {prefix / 'nginx.pid'};",
        f"error_log {prefix / 'error.log'} warn;",
        "events { worker_connections 256; }",
        "http {",
        f"    access_log {prefix / 'access.log'};",
        *(f"    {directive} {prefix / folder};" for directive, folder in temp.items()),
    ]
    return "\n".join([*head, *lines, "}"]) + "\n"


def _toml_setting(name: str) -> str:
    with CONFIG.open("rb") as handle:
        return str(tomllib.load(handle).get(name, ""))


def _fresh_database() -> str:
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{DATABASE}"


def _wait_http(url: str, what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url}")


def supervise(workdir: Path) -> int:
    """The supervisor: start the stack, write ready.json, hold until TERM, stop it all."""
    stopping = {"now": False}

    def on_term(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    stack = Stack(workdir)
    try:
        with ExitStack() as resources:
            resources.callback(stack.stop)
            ready = stack.run(resources)
            (workdir / "ready.json").write_text(json.dumps(ready, indent=1))
            _say(f"ready at {ready['public_url']}")
            while not stopping["now"]:
                for name, process in stack.processes:
                    if process.poll() is not None:
                        _say(f"{name} exited with {process.returncode}; stopping the stack")
                        stopping["now"] = True
                time.sleep(0.5)
    finally:
        (workdir / "ready.json").unlink(missing_ok=True)
        _say("stopped")
    return 0


# --- the commands ----------------------------------------------------------------------------


def up(workdir: Path) -> int:
    if _supervisor_pid(workdir) is not None:
        _say(f"already running (pid file {workdir / 'supervisor.pid'}); `make staging-down` first")
        return 1
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    log = (workdir / "supervisor.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
        [sys.executable, "-m", "tools.staging", "supervise", "--workdir", str(workdir)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # outlives `make staging`; `down` signals its whole group
    )
    log.close()
    (workdir / "supervisor.pid").write_text(str(process.pid))
    deadline = time.monotonic() + START_SECONDS
    while not (workdir / "ready.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            print((workdir / "supervisor.log").read_text()[-4000:], file=sys.stderr)
            _say("did not come up")
            down(workdir)
            return 1
        time.sleep(0.3)
    ready = json.loads((workdir / "ready.json").read_text())
    _say(f"up: proxy {ready['public_url']}, APIs {', '.join(ready['apis'])}")
    _say(f"logs in {workdir}; stop with `make staging-down`")
    return 0


def _supervisor_pid(workdir: Path) -> int | None:
    try:
        pid = int((workdir / "supervisor.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not running
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def down(workdir: Path) -> int:
    """Stop the supervisor (it stops the rest), then prove nothing of the stack is left."""
    try:
        pgid = int((workdir / "supervisor.pid").read_text())
    except (FileNotFoundError, ValueError):
        _say("not running")
        return 0
    ready_path = workdir / "ready.json"
    ports = json.loads(ready_path.read_text())["ports"] if ready_path.exists() else []
    if _alive(pgid):
        os.kill(pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _group_members(pgid)
    if left:
        _say(f"killing what did not stop: {left}")
        os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.5)
    listening = [port for port in ports if _listening(port)]
    (workdir / "supervisor.pid").unlink(missing_ok=True)
    if _group_members(pgid) or listening:
        _say(f"left behind: processes {_group_members(pgid)}, ports {listening}")
        return 1
    _say("down: no process and no port of the stack is left")
    return 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stack_env(workdir: Path) -> dict[str, str]:
    ready = workdir / "ready.json"
    if not ready.exists():
        raise SystemExit("staging: not up (`make staging` first)")
    shared: dict[str, str] = json.loads(Path(json.loads(ready.read_text())["env"]).read_text())
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FILEGATE_", "AWS_"))}
    return {**base, **shared, "FILEGATE_DATA_DIR": str(workdir / "cli")}


def verify(workdir: Path) -> int:
    """``filegate verify`` with the stack's config and env (test signatures allowed)."""
    env = _stack_env(workdir)
    command = [sys.executable, "-m", "filegate", "verify", "--allow-local-signatures"]
    return subprocess.run(command, env=env, check=False).returncode  # noqa: S603


def check(workdir: Path) -> int:
    ready = (
        json.loads((workdir / "ready.json").read_text())
        if (workdir / "ready.json").exists()
        else None
    )
    if ready is None:
        _say("not up (`make staging` first)")
        return 1
    return run_checks(ready, _stack_env(workdir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.staging", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "check", "verify", "supervise"])
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    commands = {"up": up, "down": down, "check": check, "verify": verify, "supervise": supervise}
    return commands[args.command](workdir)


if __name__ == "__main__":
    sys.exit(main())
