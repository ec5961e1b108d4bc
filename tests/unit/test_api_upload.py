"""POST /v1/files in process: statuses, problems, and nothing left behind on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from filegate.config import Settings, builtin_profiles
from filegate.domain import Area
from filegate.inspect.sandbox import Sandbox
from tests.conftest import Api, running_api
from tests.support.samples import HTML, TEXT, png

BOUNDARY = "xYzZY"


def form(*parts: str | bytes, close: bool = True) -> bytes:
    body = b""
    for part in parts:
        body += f"--{BOUNDARY}\r\n".encode() + (part.encode() if isinstance(part, str) else part)
    if close:
        body += f"--{BOUNDARY}--\r\n".encode()
    return body


def file_part(name: str = "a.txt", data: bytes = TEXT, field: str = "file") -> bytes:
    head = f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
    return head.encode() + b"Content-Type: text/plain\r\n\r\n" + data + b"\r\n"


def field_part(name: str, value: str) -> str:
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'


def assert_nothing_stored(api: Api) -> None:
    storage = api.runtime.storage
    assert list(storage.keys(Area.QUARANTINE)) == []
    assert list(storage.keys(Area.CLEAN)) == []
    tmp = api.runtime.settings.resolved_storage_dir / "quarantine" / ".tmp"
    assert list(tmp.iterdir()) == []
    listing = api.client.get("/v1/files", headers=api.auth())
    assert listing.json()["items"] == []


def post_raw(api: Api, body: bytes | Iterator[bytes], **headers: str) -> object:
    return api.client.post("/v1/files", content=body, headers={**api.auth(), **headers})


def test_multipart_upload_is_accepted_then_inspected(api: Api) -> None:
    data = png(4, 4)
    response = api.upload(data, "photo.png")
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/v1/files/{body['id']}"
    assert body["state"] == "quarantined"
    assert body["size"] == len(data)
    assert body["tenant"] == "tenant-a"
    assert api.inspect() == 2  # inspect, then promote
    after = api.client.get(f"/v1/files/{body['id']}", headers=api.auth()).json()
    assert after["state"] == "clean"
    assert after["detected_type"] == "image/png"


def test_raw_upload_decodes_rfc5987_name(api: Api) -> None:
    response = post_raw(
        api,
        TEXT,
        **{
            "Content-Disposition": "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
            "Content-Type": "text/plain",
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["name"] == "résumé.txt"
    assert response.json()["declared_type"] == "text/plain"


def test_profile_by_query_and_by_field(api: Api) -> None:
    by_query = api.client.post(
        "/v1/files?profile=documents",
        files={"file": ("a.txt", TEXT, "text/plain")},
        headers=api.auth(),
    )
    assert by_query.json()["profile"] == "documents"
    by_field = api.client.post(
        "/v1/files",
        content=form(field_part("profile", "documents"), file_part()),
        headers={**api.auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert by_field.json()["profile"] == "documents"


def test_html_named_png_is_rejected(api: Api) -> None:
    file_id = api.upload(HTML, "photo.png").json()["id"]
    api.inspect()
    record = api.client.get(f"/v1/files/{file_id}", headers=api.auth()).json()
    assert record["state"] == "rejected"
    assert "type_mismatch" in {f["code"] for f in record["findings"]}


def test_size_limit_enforced_while_streaming_without_content_length(api: Api) -> None:
    limit = api.runtime.settings.profile("images").max_size

    def body() -> Iterator[bytes]:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    response = api.client.post(
        "/v1/files?profile=images",
        content=body(),
        headers={**api.auth(), "Content-Disposition": 'attachment; filename="big.png"'},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert_nothing_stored(api)


def test_declared_oversize_is_refused_before_reading(api: Api) -> None:
    limit = api.runtime.settings.profile(None).max_size
    response = post_raw(
        api,
        b"tiny",
        **{
            "Content-Disposition": 'attachment; filename="a.txt"',
            "Content-Length": str(limit + 1),
        },
    )
    assert response.status_code == 413
    assert_nothing_stored(api)


PROBLEM_ROWS = [
    pytest.param(
        {"Content-Type": "multipart/form-data"},
        form(file_part()),
        400,
        "multipart_boundary_missing",
        id="no-boundary",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(file_part(), close=False)[:-10],
        400,
        "multipart_malformed",
        id="truncated",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        b"garbage without any boundary at all",
        400,
        "multipart_malformed",
        id="garbage",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form("X-Long: " + "a" * 20000 + "\r\n" + file_part().decode()),
        400,
        "multipart_headers_too_large",
        id="huge-part-header",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(field_part("note", "hi")),
        400,
        "multipart_file_missing",
        id="no-file-part",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(file_part(), file_part("b.txt")),
        400,
        "multipart_too_many_files",
        id="two-files",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(file_part(), field_part("profile", "documents")),
        400,
        "invalid_request",
        id="profile-after-file",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(field_part("profile", "nope"), file_part()),
        400,
        "unknown_profile",
        id="unknown-profile-field",
    ),
    pytest.param(
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        form(field_part("note", "x" * 5000), file_part()),
        400,
        "multipart_field_too_large",
        id="field-too-large",
    ),
    pytest.param(
        {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"},
        form(file_part()),
        415,
        "unsupported_media_type",
        id="multipart-mixed",
    ),
    pytest.param(
        {"Content-Type": "application/octet-stream"},
        b"raw bytes",
        400,
        "filename_missing",
        id="raw-without-filename",
    ),
]


@pytest.mark.parametrize(("headers", "body", "status", "code"), PROBLEM_ROWS)
def test_bad_uploads_get_a_problem_and_leave_nothing(
    api: Api, headers: dict[str, str], body: bytes, status: int, code: str
) -> None:
    response = post_raw(api, body, **headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["x-request-id"]
    assert_nothing_stored(api)


def test_unknown_profile_in_query(api: Api) -> None:
    response = api.client.post(
        "/v1/files?profile=nope", files={"file": ("a.txt", TEXT)}, headers=api.auth()
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_profile"


def test_bad_content_length(api: Api) -> None:
    response = post_raw(
        api,
        b"abc",
        **{"Content-Disposition": 'attachment; filename="a.txt"', "Content-Length": "-3"},
    )
    assert response.status_code in (400, 413)


def test_the_form_profile_field_sets_the_size_limit(settings: Settings, sandbox: Sandbox) -> None:
    # With a larger profile named in the form, the early Content-Length check used the default
    # profile's limit (plus multipart overhead) and answered 413 before reading the field.
    text = builtin_profiles()["documents"]
    profiles = {
        "default": text.model_copy(update={"max_size": 1_000}),
        "big": text.model_copy(update={"max_size": 200_000}),
    }
    data = b"a line of text in a large file\n" * 3_300  # ~100 kB: over default + overhead
    body = form(field_part("profile", "big"), file_part("big.txt", data))
    with running_api(settings.model_copy(update={"profiles": profiles}), sandbox) as api:
        headers = {**api.auth(), "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        accepted = api.client.post("/v1/files", content=body, headers=headers)
        assert accepted.status_code == 202, accepted.text
        assert (accepted.json()["profile"], accepted.json()["size"]) == ("big", len(data))
        # The chosen profile's own cap still holds, measured on the file, not the form.
        small = form(field_part("profile", "default"), file_part("big.txt", data))
        refused = api.client.post("/v1/files", content=small, headers=headers)
        assert refused.status_code == 413
        assert refused.json()["max_size"] == 1_000
