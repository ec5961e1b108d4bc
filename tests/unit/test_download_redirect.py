"""Large downloads from S3 answer 302 to a presigned URL that S3 (a real SeaweedFS) serves with
filegate's headers; small ones, HEAD and conditional requests stay with filegate."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest

from filegate.config import Settings, load_settings
from filegate.db import migrate
from tests.conftest import Api
from tests.support.seaweed import S3Server, s3_settings
from tests.support.services import without_filegate_env

LINE = b"a line of a plain text file that is big enough to be redirected\n"
BIG = LINE * (2 * 1024 * 1024 // len(LINE) + 1)
SMALL = LINE * 10


@pytest.fixture
def settings(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    s3_bucket: str,
) -> Settings:
    without_filegate_env(monkeypatch, tmp_path)
    migrate.upgrade(database_url)
    return load_settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        download_redirect=True,
        download_redirect_min_size="1MiB",
        **s3_settings(s3_server, s3_bucket, monkeypatch),
    )


def clean_file(api: Api, data: bytes, name: str) -> str:
    file_id: str = api.upload(data, name).json()["id"]
    api.inspect()
    assert api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()["state"] == "clean"
    return file_id


def test_a_large_download_is_a_presigned_redirect_with_safe_headers(api: Api) -> None:
    file_id = clean_file(api, BIG, "report <final>.txt")
    url = f"/v1/files/{file_id}/content"
    answer = api.client.get(url, headers=api.auth(), follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["cache-control"] == "private, no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    location = answer.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    assert "X-Amz-Signature" in query
    assert "Authorization" not in location

    with httpx.Client(timeout=30) as s3:
        fetched = s3.get(location)
        assert fetched.status_code == 200
        assert fetched.content == BIG
        assert fetched.headers["content-type"].startswith("text/plain")
        assert fetched.headers["content-disposition"].startswith("attachment;")
        assert fetched.headers["cache-control"] == "private, no-store"
        # Ranges go straight to S3.
        part = s3.get(location, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, BIG[10:20])
        # The signature covers the key and the headers: a changed URL is refused.
        forged = location.replace("response-content-type=text", "response-content-type=xtext")
        assert s3.get(forged).status_code == 403

    # A stranger, HEAD and a matching If-None-Match never get a URL.
    assert api.client.get(url, headers=api.auth("b"), follow_redirects=False).status_code == 404
    head = api.client.head(url, headers=api.auth())
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(BIG)))
    etag = head.headers["etag"]
    cached = api.client.get(url, headers={**api.auth(), "If-None-Match": etag})
    assert cached.status_code == 304


def test_a_small_download_is_served_by_filegate(api: Api) -> None:
    file_id = clean_file(api, SMALL, "notes.txt")
    answer = api.client.get(
        f"/v1/files/{file_id}/content", headers=api.auth(), follow_redirects=False
    )
    assert answer.status_code == 200
    assert answer.content == SMALL
