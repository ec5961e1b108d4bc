"""Reading, downloading, listing and deleting files in process."""

from __future__ import annotations

import hashlib

import pytest

from filegate.domain import Area
from tests.conftest import Api
from tests.support.samples import HTML, png

# Text is promoted as uploaded; images are re-encoded (see test_images_are_served_sanitised).
TEXT_BODY = b"".join(b"line %d of a plain text file\n" % i for i in range(40))


def clean_file(api: Api, data: bytes | None = None, name: str = "notes.txt") -> str:
    file_id: str = api.upload(data or TEXT_BODY, name).json()["id"]
    api.inspect()
    return file_id


def test_download_returns_exact_bytes_with_safe_headers(api: Api) -> None:
    data = TEXT_BODY
    file_id = clean_file(api, data, "my notes.txt")
    response = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["content-type"].startswith("text/plain")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert headers["content-disposition"] == (
        "attachment; filename=\"my notes.txt\"; filename*=UTF-8''my%20notes.txt"
    )
    assert (
        headers["etag"].strip('"')
        == api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()["sha256"]
    )
    assert headers["accept-ranges"] == "bytes"


def test_served_type_comes_from_content_not_the_client(api: Api) -> None:
    response = api.client.post(
        "/v1/files",
        files={"file": ("photo.png", png(), "text/html")},
        headers=api.auth(),
    )
    file_id = response.json()["id"]
    api.inspect()
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    # The declared type disagrees with the bytes, which is itself a finding.
    assert record["declared_type"] == "text/html"
    if record["state"] == "clean":
        content = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
        assert content.headers["content-type"] == "image/png"


def test_non_ascii_name_is_rfc6266_encoded(api: Api) -> None:
    # Raw upload: multipart clients percent-escape quotes in names themselves (WHATWG).
    upload = api.client.post(
        "/v1/files",
        content=png(),
        headers={
            **api.auth(),
            "Content-Disposition": "attachment; filename*=UTF-8''na%C3%AFve%20%22quote%22%3B.png",
        },
    )
    file_id = upload.json()["id"]
    api.inspect()
    response = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="na_ve _quote__.png"')
    assert "filename*=UTF-8''na%C3%AFve%20%22quote%22%3B.png" in disposition


@pytest.mark.parametrize(
    ("range_header", "status", "expected"),
    [
        ("bytes=0-9", 206, (0, 10)),
        ("bytes=10-", 206, (10, None)),
        ("bytes=-5", 206, (-5, None)),
        ("bytes=0-999999", 206, (0, None)),
        ("bytes=0-0", 206, (0, 1)),
        ("bytes=0-1,4-5", 200, (0, None)),
        ("items=0-1", 200, (0, None)),
    ],
)
def test_range_requests(
    api: Api, range_header: str, status: int, expected: tuple[int, int | None]
) -> None:
    data = TEXT_BODY
    file_id = clean_file(api, data)
    response = api.client.get(
        f"/v1/files/{file_id}/content", headers={**api.auth(), "Range": range_header}
    )
    assert response.status_code == status
    start, end = expected
    assert response.content == data[start:end]
    if status == 206:
        first = start % len(data)
        assert response.headers["content-range"] == (
            f"bytes {first}-{first + len(response.content) - 1}/{len(data)}"
        )


def test_unsatisfiable_range(api: Api) -> None:
    data = TEXT_BODY
    file_id = clean_file(api, data)
    response = api.client.get(
        f"/v1/files/{file_id}/content", headers={**api.auth(), "Range": "bytes=5000-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(data)}"
    assert response.json()["code"] == "range_not_satisfiable"


def test_if_range_with_stale_etag_sends_everything(api: Api) -> None:
    data = TEXT_BODY
    file_id = clean_file(api, data)
    response = api.client.get(
        f"/v1/files/{file_id}/content",
        headers={**api.auth(), "Range": "bytes=0-3", "If-Range": '"stale"'},
    )
    assert response.status_code == 200
    assert response.content == data


def test_etag_revalidation_and_head(api: Api) -> None:
    data = TEXT_BODY
    file_id = clean_file(api, data)
    url = f"/v1/files/{file_id}/content"
    etag = api.client.get(url, headers=api.auth()).headers["etag"]
    again = api.client.get(url, headers={**api.auth(), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    head = api.client.head(url, headers=api.auth())
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["x-content-type-options"] == "nosniff"


def test_quarantined_file_is_not_served(api: Api) -> None:
    file_id = api.upload(png()).json()["id"]
    response = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert response.status_code == 409
    assert response.json()["code"] == "file_not_ready"
    assert response.json()["state"] == "quarantined"


def test_rejected_file_is_never_served(api: Api) -> None:
    file_id = clean_file(api, HTML, "photo.png")
    response = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "file_rejected"
    assert "type_mismatch" in problem["findings"]


def test_listing_is_paginated_and_filtered(api: Api) -> None:
    ids = [api.upload(png(), f"p{i}.png").json()["id"] for i in range(5)]
    api.upload(HTML, "bad.png")
    api.inspect()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", "state": "clean", **({"cursor": cursor} if cursor else {})}
        page = api.client.get("/v1/files", params=params, headers=api.auth()).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    rejected = api.client.get("/v1/files?state=rejected", headers=api.auth()).json()
    assert [item["name"] for item in rejected["items"]] == ["bad.png"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cursor=nope", "invalid_cursor"),
        ("limit=0", "invalid_request"),
        ("limit=abc", "invalid_request"),
        ("state=deleted", "invalid_request"),
    ],
)
def test_listing_rejects_bad_parameters(api: Api, query: str, code: str) -> None:
    response = api.client.get(f"/v1/files?{query}", headers=api.auth())
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_delete_removes_row_and_bytes(api: Api) -> None:
    file_id = clean_file(api)
    assert api.runtime.storage.exists(Area.CLEAN, file_id)
    assert api.client.delete(f"/v1/files/{file_id}", headers=api.auth()).status_code == 204
    assert not api.runtime.storage.exists(Area.CLEAN, file_id)
    assert api.client.get(f"/v1/files/{file_id}", headers=api.auth()).status_code == 404
    assert api.client.delete(f"/v1/files/{file_id}", headers=api.auth()).status_code == 404


@pytest.mark.parametrize("bad_id", ["nope", "../../etc/passwd", "01ARZ3NDEKTSV4RRFFQ69G5FA%0A"])
def test_malformed_ids_are_a_clear_400(api: Api, bad_id: str) -> None:
    response = api.client.get(f"/v1/files/{bad_id}", headers=api.auth())
    assert response.status_code in (400, 404)
    assert response.headers["content-type"] == "application/problem+json"


def test_tenant_b_cannot_see_or_touch_tenant_a_files(api: Api) -> None:
    file_id = clean_file(api)
    missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    for path in (f"/v1/files/{file_id}", f"/v1/files/{file_id}/content"):
        theirs = api.client.get(path, headers=api.auth("b"))
        absent = api.client.get(path.replace(file_id, missing), headers=api.auth("b"))
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["code"] == absent.json()["code"] == "file_not_found"
        assert theirs.json()["detail"] == absent.json()["detail"]
    assert api.client.delete(f"/v1/files/{file_id}", headers=api.auth("b")).status_code == 404
    assert api.client.get("/v1/files", headers=api.auth("b")).json()["items"] == []
    assert api.client.get(f"/v1/files/{file_id}", headers=api.auth()).status_code == 200


def test_images_are_served_sanitised(api: Api) -> None:
    data = png(16, 16) + b"trailing"  # not promoted as is: the copy is re-encoded
    clean = png(16, 16)
    file_id = clean_file(api, clean, "photo.png")
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    assert record["state"] == "clean"
    served = api.client.get(f"/v1/files/{file_id}/content", headers=api.auth())
    assert served.headers["content-type"] == "image/png"
    assert hashlib.sha256(served.content).hexdigest() == record["sha256"]
    assert record["size"] == len(served.content)
    assert served.headers["etag"] == f'"{record["sha256"]}"'
    rejected = clean_file(api, data, "trailing.png")
    verdict = api.client.get(f"/v1/files/{rejected}", headers=api.auth()).json()
    assert "image_trailing_data" in [f["code"] for f in verdict["findings"]]
