"""tuspy, the tus project's Python client, against a running server: upload, resume, checksums."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tusclient import client as tus

from tests.e2e.live import (
    MIB,
    TUS_BASE,
    LiveServer,
    TextPayload,
    clean_sha256,
    tus_offset,
    upload_id_of,
)

CHUNK = 256 * 1024
SIZE = 3 * MIB + 12345  # not a whole number of chunks: the last PATCH is short


@contextmanager
def text_file(tmp_path: Path) -> Iterator[tuple[BinaryIO, str]]:
    """A ~3 MiB text file on disk, opened for the client, and its sha256."""
    payload = TextPayload(SIZE)
    path = payload.write_to(tmp_path / "notes.txt")
    with path.open("rb") as stream:
        yield stream, payload.sha256()


def tus_client(live: LiveServer, key: str) -> tus.TusClient:
    return tus.TusClient(live.base_url + TUS_BASE, headers={"Authorization": f"Bearer {key}"})


def test_tuspy_chunked_upload_is_inspected_and_downloads_identically(
    live: LiveServer, tmp_path: Path
) -> None:
    key = live.create_key("tenant-a")
    with text_file(tmp_path) as (stream, sha256):
        uploader = tus_client(live, key).uploader(
            file_stream=stream, chunk_size=CHUNK, metadata={"filename": "notes.txt"}
        )
        uploader.upload()
    assert uploader.offset == SIZE
    with live.client(key) as client:
        assert tus_offset(client, uploader.url) == SIZE
        record = client.get(f"/v1/files/{upload_id_of(uploader.url)}").json()
        assert (record["name"], record["size"]) == ("notes.txt", SIZE)
        assert clean_sha256(client, upload_id_of(uploader.url)) == sha256


def test_tuspy_resumes_with_a_new_uploader_after_an_abort(live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    client = tus_client(live, key)
    with text_file(tmp_path) as (stream, sha256), live.client(key) as http:
        first = client.uploader(
            file_stream=stream, chunk_size=CHUNK, metadata={"filename": "notes.txt"}
        )
        for _ in range(3):
            first.upload_chunk()
        url = first.url
        del first  # the client "crashes": only the URL survives
        offset = tus_offset(http, url)
        print(f"offset after 3 chunks and an abort: {offset}")
        assert offset == 3 * CHUNK
        second = client.uploader(file_stream=stream, chunk_size=CHUNK, url=url)
        assert second.offset == offset  # it asked the server with HEAD
        second.upload()
        assert tus_offset(http, url) == SIZE
        assert clean_sha256(http, upload_id_of(url)) == sha256


def test_tuspy_with_upload_checksum_completes(live: LiveServer, tmp_path: Path) -> None:
    key = live.create_key("tenant-a")
    with text_file(tmp_path) as (stream, sha256):
        uploader = tus_client(live, key).uploader(
            file_stream=stream,
            chunk_size=CHUNK,
            metadata={"filename": "notes.txt"},
            upload_checksum=True,  # sha1 of every chunk in Upload-Checksum
        )
        uploader.upload()
    assert uploader.request is not None
    assert uploader.request.status_code == 204
    with live.client(key) as client:
        assert clean_sha256(client, upload_id_of(uploader.url)) == sha256
