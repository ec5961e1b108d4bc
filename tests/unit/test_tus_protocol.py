"""The tus 1.0.0 endpoint in process: one table row per header rule and status, then flows."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from filegate.cli import build_runtime
from filegate.config import Settings, builtin_profiles, load_settings
from filegate.db import migrate
from filegate.db.models import UploadRow
from filegate.domain import Area, new_id, utcnow
from filegate.errors import FilegateError
from filegate.inspect.sandbox import Sandbox
from filegate.services import tus as uploads_service
from filegate.services.keys import create_key
from filegate.tus.headers import CHECKSUM_ALGORITHMS, EXTENSIONS
from filegate.web.app import create_app
from tests.conftest import ALL_SCOPES, Api, running_api
from tests.support.samples import TEXT
from tests.support.seaweed import s3_requests, s3_settings
from tests.support.services import without_filegate_env
from tests.unit.test_inspect_images import jpeg_with_exif

BASE = "/v1/tus/"
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
ULID = "[0-9A-HJKMNP-TV-Z]{26}"
LOCATION = re.compile(rf"http://testserver/v1/tus/{ULID}")
# RFC 9110 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d{2}:\d{2}:\d{2} GMT"
)
DEFAULT_MAX = int(builtin_profiles()["default"].max_size)
LARGEST_MAX = max(int(p.max_size) for p in builtin_profiles().values())


# --- helpers -------------------------------------------------------------------------------


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def checksum(algorithm: str, data: bytes) -> str:
    if algorithm == "crc32":
        digest = zlib.crc32(data).to_bytes(4, "big")
    else:
        digest = hashlib.new(algorithm, data).digest()
    return f"{algorithm} {b64(digest)}"


def tus(api: Api, who: str | None = "a", **extra: str) -> dict[str, str]:
    return {**(api.auth(who) if who else {}), **TUS, **extra}


def create(
    api: Api,
    length: int | None = 10,
    *,
    who: str = "a",
    body: bytes | None = None,
    **extra: str,
) -> httpx.Response:
    sizing = {"Upload-Length": str(length)} if length is not None else {"Upload-Defer-Length": "1"}
    headers = tus(api, who, **sizing, **(OCTET if body else {}), **extra)
    return api.client.post(BASE, headers=headers, content=body)


def patch(
    api: Api, upload_id: str, offset: int, data: bytes, *, who: str = "a", **extra: str
) -> httpx.Response:
    headers = tus(api, who, **OCTET, **{"Upload-Offset": str(offset)}, **extra)
    return api.client.patch(BASE + upload_id, headers=headers, content=data)


def head(api: Api, upload_id: str, who: str = "a") -> httpx.Response:
    return api.client.head(BASE + upload_id, headers=tus(api, who))


def delete(api: Api, upload_id: str, who: str = "a") -> httpx.Response:
    return api.client.delete(BASE + upload_id, headers=tus(api, who))


def id_of(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def partial(api: Api, data: bytes, *, who: str = "a", send: bool = True) -> str:
    upload_id = id_of(create(api, len(data), who=who, **{"Upload-Concat": "partial"}))
    if send:
        assert patch(api, upload_id, 0, data, who=who).status_code == 204
    return upload_id


def final(api: Api, *part_ids: str, who: str = "a", **extra: str) -> httpx.Response:
    urls = " ".join(BASE + part for part in part_ids)
    headers = tus(api, who, **{"Upload-Concat": f"final;{urls}"}, **extra)
    return api.client.post(BASE, headers=headers)


def expire(api: Api, upload_id: str) -> None:
    with api.runtime.db.session() as session:
        session.execute(
            update(UploadRow)
            .where(UploadRow.id == upload_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def upload_count(api: Api) -> int:
    with api.runtime.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(UploadRow)) or 0)


def assert_problem(response: httpx.Response, code: str | None, *, has_body: bool = True) -> None:
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("tus-resumable") == "1.0.0"
    if has_body:
        assert response.json()["code"] == code
        assert response.json()["status"] == response.status_code


def assert_offset(api: Api, upload_id: str, offset: int) -> None:
    """Both the reported offset and the stored bytes are exactly ``offset``: the upload can
    be continued there and not one byte later (on S3 the parts are not an object yet)."""
    assert head(api, upload_id).headers["upload-offset"] == str(offset)
    storage = api.runtime.storage
    storage.appender(Area.UPLOADS, upload_id, offset).close()
    with pytest.raises(FilegateError):
        storage.appender(Area.UPLOADS, upload_id, offset + 1)


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request against a prepared target and what must come back.

    ``headers`` are merged over the method's defaults (a ``None`` value removes one).
    """

    method: str
    target: str
    status: int
    code: str | None = None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    body: bytes = b""
    who: str | None = "a"
    expect: Mapping[str, str | re.Pattern[str]] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    offset_after: int | None = None
    gone_after: bool = False


def row(
    case_id: str,
    method: str,
    target: str,
    status: int,
    code: str | None = None,
    *,
    marks: Any = (),
    **options: Any,
) -> Any:
    return pytest.param(Row(method, target, status, code, **options), id=case_id, marks=marks)


DEFAULT_HEADERS: dict[str, dict[str, str]] = {
    "OPTIONS": {},
    "POST": {**TUS, "Upload-Length": "10"},
    "HEAD": TUS,
    "PATCH": {**TUS, **OCTET, "Upload-Offset": "4"},
    "DELETE": TUS,
}
NO_VERSION = {"Tus-Resumable": None}
OLD_VERSION = {"Tus-Resumable": "0.2.2"}
VERSION_412 = {"Tus-Version": "1.0.0"}
CAPABILITIES = {
    "Tus-Version": "1.0.0",
    "Tus-Extension": ",".join(EXTENSIONS),
    "Tus-Max-Size": str(LARGEST_MAX),
    "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
}
CREATED = {"Location": LOCATION, "Upload-Expires": IMF_FIXDATE, "Tus-Resumable": "1.0.0"}
NO_LENGTH = {"Upload-Length": None}
CHUNK = b"456"
NOT_UTF8 = b"\xff\xfe"


def _lengths(value: str) -> dict[str, str | None]:
    return {"Upload-Length": value}


def _override(method: str) -> dict[str, str]:
    return {"X-HTTP-Method-Override": method}


ROWS = [
    # OPTIONS: capabilities, whatever Tus-Resumable says (tus: OPTIONS ignores it).
    row("options-no-version", "OPTIONS", "collection", 204, who=None, expect=CAPABILITIES),
    row(
        "options-bogus-version",
        "OPTIONS",
        "collection",
        204,
        who=None,
        headers={"Tus-Resumable": "9.9.9"},
        expect=CAPABILITIES,
    ),
    row("options-on-upload", "OPTIONS", "upload", 204, headers=TUS, expect=CAPABILITIES),
    # Tus-Resumable is required everywhere else, and only 1.0.0 is spoken.
    *(
        row(
            f"{method.lower()}-{name}",
            method,
            "collection" if method == "POST" else "upload",
            412,
            "tus_version_unsupported",
            headers=headers,
            expect=VERSION_412,
            offset_after=None if method == "POST" else 4,
        )
        for method in ("POST", "HEAD", "PATCH", "DELETE")
        for name, headers in (("no-version", NO_VERSION), ("old-version", OLD_VERSION))
    ),
    # creation
    row("create", "POST", "collection", 201, expect=CREATED, absent=("Upload-Offset",)),
    row(
        "create-upload-scope-only",
        "POST",
        "collection",
        201,
        who="a-upload",
        expect=CREATED,
    ),
    row(
        "create-deferred",
        "POST",
        "collection",
        201,
        headers={**NO_LENGTH, "Upload-Defer-Length": "1"},
        expect=CREATED,
    ),
    row("create-no-length", "POST", "collection", 400, "tus_length_required", headers=NO_LENGTH),
    row(
        "create-length-and-defer",
        "POST",
        "collection",
        400,
        "tus_invalid_header",
        headers={"Upload-Defer-Length": "1"},
    ),
    row(
        "create-defer-2",
        "POST",
        "collection",
        400,
        "tus_invalid_header",
        headers={**NO_LENGTH, "Upload-Defer-Length": "2"},
    ),
    *(
        row(f"create-length-{name}", "POST", "collection", 400, "tus_invalid_header", headers=h)
        for name, h in (
            ("negative", _lengths("-5")),
            ("plus", _lengths("+5")),
            ("space", _lengths(" 5")),
            ("suffix", _lengths("5a")),
            ("hex", _lengths("0x10")),
            ("20-digits", _lengths("1" * 20)),
            ("over-int64", _lengths(str(2**63))),
        )
    ),
    row(
        "create-length-over-profile-max",
        "POST",
        "collection",
        413,
        "file_too_large",
        headers=_lengths(str(DEFAULT_MAX + 1)),
    ),
    row(
        "create-length-at-profile-max",
        "POST",
        "collection",
        201,
        headers=_lengths(str(DEFAULT_MAX)),
    ),
    row(
        "metadata-bad-base64",
        "POST",
        "collection",
        400,
        "tus_invalid_header",
        headers={"Upload-Metadata": "filename !!!"},
    ),
    row(
        "metadata-not-utf8",
        "POST",
        "collection",
        400,
        "tus_invalid_header",
        headers={"Upload-Metadata": f"filename {b64(NOT_UTF8)}"},
    ),
    row(
        "metadata-duplicate-key",
        "POST",
        "collection",
        400,
        "tus_invalid_header",
        headers={"Upload-Metadata": f"filename {b64('a.txt')},filename {b64('b.txt')}"},
    ),
    row(
        "metadata-key-without-value",
        "POST",
        "collection",
        201,
        headers={"Upload-Metadata": f"is_confidential,filename {b64('a.txt')}"},
    ),
    row(
        "metadata-unknown-profile",
        "POST",
        "collection",
        400,
        "unknown_profile",
        headers={"Upload-Metadata": f"profile {b64('nope')}"},
    ),
    # creation-with-upload
    row(
        "create-with-upload",
        "POST",
        "collection",
        201,
        headers=OCTET,
        body=b"hello",
        expect={**CREATED, "Upload-Offset": "5"},
    ),
    row(
        "create-with-upload-wrong-type",
        "POST",
        "collection",
        415,
        "tus_content_type",
        headers={"Content-Type": "application/octet-stream"},
        body=b"hello",
    ),
    row(
        "create-with-upload-too-long",
        "POST",
        "collection",
        413,
        "file_too_large",
        headers={**OCTET, "Upload-Length": "3"},
        body=b"hello",
    ),
    *(
        row(
            f"create-with-upload-checksum-{name}",
            "POST",
            "collection",
            400,
            code,
            headers={**OCTET, "Upload-Checksum": value},
            body=b"hello",
        )
        for name, value, code in (
            ("unknown-algorithm", f"whirlpool {b64(b'x' * 64)}", "tus_checksum_algorithm"),
            ("bad-base64", "sha1 !!notbase64!!", "tus_invalid_header"),
        )
    ),
    # HEAD
    row(
        "head",
        "HEAD",
        "upload",
        200,
        expect={
            "Upload-Offset": "4",
            "Upload-Length": "10",
            "Cache-Control": "no-store",
            "Upload-Expires": IMF_FIXDATE,
            "Tus-Resumable": "1.0.0",
        },
        absent=("Upload-Defer-Length", "Upload-Metadata", "Upload-Concat"),
    ),
    row(
        "head-deferred",
        "HEAD",
        "deferred",
        200,
        expect={"Upload-Offset": "0", "Upload-Defer-Length": "1", "Cache-Control": "no-store"},
        absent=("Upload-Length",),
    ),
    # PATCH
    row(
        "patch",
        "PATCH",
        "upload",
        204,
        body=CHUNK,
        expect={"Upload-Offset": "7", "Upload-Expires": IMF_FIXDATE, "Tus-Resumable": "1.0.0"},
        offset_after=7,
    ),
    row(
        "patch-content-type-charset",
        "PATCH",
        "upload",
        204,
        headers={"Content-Type": "Application/Offset+Octet-Stream; charset=binary"},
        body=CHUNK,
        offset_after=7,
    ),
    row(
        "patch-wrong-content-type",
        "PATCH",
        "upload",
        415,
        "tus_content_type",
        headers={"Content-Type": "application/octet-stream"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-no-content-type",
        "PATCH",
        "upload",
        415,
        "tus_content_type",
        headers={"Content-Type": None},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-offset-behind",
        "PATCH",
        "upload",
        409,
        "tus_offset_mismatch",
        headers={"Upload-Offset": "3"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-offset-ahead",
        "PATCH",
        "upload",
        409,
        "tus_offset_mismatch",
        headers={"Upload-Offset": "5"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-no-offset",
        "PATCH",
        "upload",
        400,
        "tus_invalid_header",
        headers={"Upload-Offset": None},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-offset-negative",
        "PATCH",
        "upload",
        400,
        "tus_invalid_header",
        headers={"Upload-Offset": "-4"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-checksum-unknown-algorithm",
        "PATCH",
        "upload",
        400,
        "tus_checksum_algorithm",
        headers={"Upload-Checksum": f"whirlpool {b64(b'x' * 64)}"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-checksum-bad-base64",
        "PATCH",
        "upload",
        400,
        "tus_invalid_header",
        headers={"Upload-Checksum": "sha1 !!notbase64!!"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-checksum-mismatch",
        "PATCH",
        "upload",
        460,
        "tus_checksum_mismatch",
        headers={"Upload-Checksum": checksum("sha1", b"654")},
        body=CHUNK,
        offset_after=4,
    ),
    *(
        row(
            f"patch-checksum-{algorithm}",
            "PATCH",
            "upload",
            204,
            headers={"Upload-Checksum": checksum(algorithm, CHUNK)},
            body=CHUNK,
            expect={"Upload-Offset": "7"},
            offset_after=7,
        )
        for algorithm in CHECKSUM_ALGORITHMS
    ),
    row(
        "patch-beyond-length",
        "PATCH",
        "upload",
        413,
        "file_too_large",
        body=b"4567890",
        offset_after=4,
    ),
    row(
        "patch-exactly-to-length",
        "PATCH",
        "upload",
        204,
        body=b"456789",
        expect={"Upload-Offset": "10"},
        absent=("Upload-Expires",),
    ),
    row(
        "patch-changes-known-length",
        "PATCH",
        "upload",
        400,
        "tus_length_mismatch",
        headers={"Upload-Length": "11"},
        body=CHUNK,
        offset_after=4,
    ),
    row(
        "patch-repeats-known-length",
        "PATCH",
        "upload",
        204,
        headers={"Upload-Length": "10"},
        body=CHUNK,
        offset_after=7,
    ),
    row(
        "patch-deferred-sets-length",
        "PATCH",
        "deferred",
        204,
        headers={"Upload-Offset": "0", "Upload-Length": "3"},
        body=CHUNK,
        expect={"Upload-Offset": "3"},
    ),
    row(
        "patch-deferred-over-profile-max",
        "PATCH",
        "deferred",
        413,
        "file_too_large",
        headers={"Upload-Offset": "0", "Upload-Length": str(DEFAULT_MAX + 1)},
        body=CHUNK,
    ),
    row(
        "patch-final", "PATCH", "final", 403, "tus_final_immutable", headers={"Upload-Offset": "0"}
    ),
    # unknown, malformed, another tenant's: all the same 404
    *(
        row(f"{method.lower()}-{target}", method, target, 404, "tus_upload_not_found", body=body)
        for method, body in (("HEAD", b""), ("PATCH", CHUNK), ("DELETE", b""))
        for target in ("missing", "malformed")
    ),
    *(
        row(
            f"{method.lower()}-other-tenant",
            method,
            "upload",
            404,
            "tus_upload_not_found",
            who="b",
            body=body,
            offset_after=4,
        )
        for method, body in (("HEAD", b""), ("PATCH", CHUNK), ("DELETE", b""))
    ),
    # termination and expiration
    row("delete", "DELETE", "upload", 204, expect={"Tus-Resumable": "1.0.0"}, gone_after=True),
    *(
        row(f"{method.lower()}-{target}", method, target, 410, "tus_upload_gone", body=body)
        for method, body in (("HEAD", b""), ("PATCH", CHUNK), ("DELETE", b""))
        for target in ("terminated", "expired")
    ),
    # X-HTTP-Method-Override
    row(
        "override-patch",
        "POST",
        "upload",
        204,
        headers={**_override("PATCH"), **OCTET, **NO_LENGTH, "Upload-Offset": "4"},
        body=CHUNK,
        expect={"Upload-Offset": "7"},
        offset_after=7,
    ),
    row(
        "override-patch-lowercase",
        "POST",
        "upload",
        204,
        headers={**_override("patch"), **OCTET, **NO_LENGTH, "Upload-Offset": "4"},
        body=CHUNK,
        offset_after=7,
    ),
    row(
        "override-delete",
        "POST",
        "upload",
        204,
        headers={**_override("DELETE"), **NO_LENGTH},
        gone_after=True,
    ),
    # authentication and scopes
    *(
        row(
            f"{method.lower()}-no-key",
            method,
            "collection" if method == "POST" else "upload",
            401,
            "unauthenticated",
            who=None,
        )
        for method in ("POST", "HEAD", "PATCH", "DELETE")
    ),
    row(
        "post-read-only-key",
        "POST",
        "collection",
        403,
        "forbidden",
        who="a-read",
    ),
]


def prepare(api: Api, target: str) -> tuple[str, str | None]:
    """The path a row's request goes to, and the upload id behind it (if any)."""
    if target == "collection":
        return BASE, None
    if target == "missing":
        return BASE + new_id(), None
    if target == "malformed":
        return BASE + "not-an-upload-id", None
    if target == "final":
        upload_id = id_of(final(api, partial(api, b"abc")))
    elif target == "deferred":
        upload_id = id_of(create(api, None))
    else:
        upload_id = id_of(create(api, 10))
        assert patch(api, upload_id, 0, b"0123").status_code == 204
    if target == "terminated":
        assert delete(api, upload_id).status_code == 204
    elif target == "expired":
        expire(api, upload_id)
    return BASE + upload_id, upload_id


def send(api: Api, case: Row, path: str) -> httpx.Response:
    merged = {**DEFAULT_HEADERS[case.method], **case.headers}
    headers = {k: v for k, v in merged.items() if v is not None}
    if case.who is not None:
        headers.update(api.auth(case.who))
    return api.client.request(case.method, path, headers=headers, content=case.body or None)


@pytest.mark.parametrize("case", ROWS)
def test_protocol(api: Api, case: Row) -> None:
    path, upload_id = prepare(api, case.target)
    before = upload_count(api)
    response = send(api, case, path)
    assert response.status_code == case.status, response.text
    for name, want in case.expect.items():
        got = response.headers.get(name)
        assert got is not None, name
        assert want.fullmatch(got) if isinstance(want, re.Pattern) else got == want, (name, got)
    for name in case.absent:
        assert name not in response.headers, name
    if case.status >= 400:
        assert_problem(response, case.code, has_body=case.method != "HEAD")
    elif case.method != "OPTIONS":
        assert response.headers["tus-resumable"] == "1.0.0"
    created = case.method == "POST" and case.target == "collection" and case.status == 201
    assert upload_count(api) == before + created
    if case.offset_after is not None:
        assert upload_id is not None
        assert_offset(api, upload_id, case.offset_after)
    if case.gone_after:
        assert upload_id is not None
        assert head(api, upload_id).status_code == 410
        assert patch(api, upload_id, 4, CHUNK).status_code == 410


AUTH_CASES = [
    ("POST", "collection", None, 401),
    ("HEAD", "upload", None, 401),
    ("PATCH", "upload", None, 401),
    ("DELETE", "upload", None, 401),
    ("POST", "collection", "a-read", 403),
]


@pytest.mark.parametrize(("method", "target", "who", "status"), AUTH_CASES)
def test_auth_statuses(api: Api, method: str, target: str, who: str | None, status: int) -> None:
    """The statuses of the auth rows above, independent of their missing Tus-Resumable."""
    path, upload_id = prepare(api, target)
    response = send(api, Row(method, target, status, who=who, body=b""), path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if upload_id is not None:
        assert_offset(api, upload_id, 4)


@pytest.mark.parametrize("method", ["HEAD", "PATCH", "DELETE"])
def test_other_tenant_answers_exactly_like_a_missing_id(api: Api, method: str) -> None:
    upload_id = id_of(create(api))
    headers = {**TUS, **OCTET, "Upload-Offset": "0"}

    def answer(path: str) -> tuple[int, dict[str, object], str | None]:
        response = api.client.request(method, path, headers={**headers, **api.auth("b")})
        body = (
            {k: v for k, v in response.json().items() if k != "request_id"}
            if method != "HEAD"
            else {}
        )
        return response.status_code, body, response.headers.get("content-type")

    assert answer(BASE + upload_id) == answer(BASE + new_id()) == answer(BASE + "x")


# --- multi-step flows ----------------------------------------------------------------------


def test_upload_expires_is_about_the_configured_expiry(api: Api) -> None:
    response = create(api)
    expires = parsedate_to_datetime(response.headers["upload-expires"])
    expected = utcnow() + timedelta(seconds=api.runtime.settings.tus_expiry_seconds)
    assert abs((expires - expected).total_seconds()) < 5


def test_empty_upload_is_complete_on_creation(api: Api) -> None:
    upload_id = id_of(create(api, 0))
    done = head(api, upload_id)
    assert done.headers["upload-offset"] == done.headers["upload-length"] == "0"
    assert "upload-expires" not in done.headers
    file = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert file["size"] == 0
    assert file["sha256"] == hashlib.sha256(b"").hexdigest()


def test_creation_with_upload_verifies_upload_checksum(api: Api) -> None:
    response = create(api, 10, body=b"hello", **{"Upload-Checksum": checksum("sha1", b"hullo")})
    assert response.status_code == 460
    assert_problem(response, "tus_checksum_mismatch")


def test_metadata_is_echoed_byte_for_byte(api: Api) -> None:
    metadata = f"filename {b64('résumé.txt')},is_confidential,filetype {b64('text/plain')}"
    upload_id = id_of(create(api, **{"Upload-Metadata": metadata}))
    assert head(api, upload_id).headers["upload-metadata"] == metadata


def test_checksum_mismatch_then_correct_patch_at_the_same_offset(api: Api) -> None:
    upload_id = id_of(create(api, 6))
    bad = patch(api, upload_id, 0, b"abc", **{"Upload-Checksum": checksum("sha256", b"abd")})
    assert bad.status_code == 460
    assert_problem(bad, "tus_checksum_mismatch")
    assert_offset(api, upload_id, 0)
    good = patch(api, upload_id, 0, b"abc", **{"Upload-Checksum": checksum("sha256", b"abc")})
    assert good.status_code == 204
    assert good.headers["upload-offset"] == "3"
    assert patch(api, upload_id, 3, b"def").headers["upload-offset"] == "6"
    file = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert file["sha256"] == hashlib.sha256(b"abcdef").hexdigest()


def test_deferred_length_is_set_by_a_later_patch(api: Api) -> None:
    upload_id = id_of(create(api, None))
    assert patch(api, upload_id, 0, b"hello, ").headers["upload-offset"] == "7"
    assert "upload-length" not in head(api, upload_id).headers
    done = patch(api, upload_id, 7, b"world", **{"Upload-Length": "12"})
    assert done.status_code == 204
    assert done.headers["upload-offset"] == "12"
    after = head(api, upload_id)
    assert after.headers["upload-length"] == "12"
    assert "upload-defer-length" not in after.headers
    file = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert file["size"] == 12


def test_deferred_length_below_received_bytes_is_refused(api: Api) -> None:
    upload_id = id_of(create(api, None))
    patch(api, upload_id, 0, b"hello")
    response = patch(api, upload_id, 5, b"", **{"Upload-Length": "3"})
    assert response.status_code == 400
    assert_problem(response, "tus_length_mismatch")
    assert "upload-length" not in head(api, upload_id).headers


def test_completed_upload_becomes_a_clean_downloadable_file(api: Api) -> None:
    metadata = f"filename {b64('notes.txt')},filetype {b64('text/plain')}"
    upload_id = id_of(create(api, len(TEXT), **{"Upload-Metadata": metadata}))
    assert patch(api, upload_id, 0, TEXT[:10]).status_code == 204
    done = patch(api, upload_id, 10, TEXT[10:])
    assert done.status_code == 204
    assert done.headers["upload-offset"] == str(len(TEXT))
    assert "upload-expires" not in done.headers
    record = api.client.get(f"/v1/files/{upload_id}", headers=api.auth())
    assert record.status_code == 200
    assert record.json()["state"] == "quarantined"
    assert record.json()["size"] == len(TEXT)
    assert record.json()["sha256"] == hashlib.sha256(TEXT).hexdigest()
    assert record.json()["name"] == "notes.txt"
    assert api.inspect() == 2  # inspect, then promote
    after = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert after["state"] == "clean", after
    content = api.client.get(f"/v1/files/{upload_id}/content", headers=api.auth())
    assert content.content == TEXT
    completed = head(api, upload_id)
    assert completed.headers["upload-offset"] == completed.headers["upload-length"]
    again = patch(api, upload_id, len(TEXT), b"x")
    assert again.status_code == 409


def test_a_completion_cut_short_is_finished_by_the_next_head(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every byte durable, then the process died before the file existed: the next HEAD (on
    any server) completes it, reading the sha256 back where the bytes could not be (S3)."""
    real = uploads_service.complete
    calls: list[int] = []

    def cut_short(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the process died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(uploads_service, "complete", cut_short)
    upload_id = id_of(create(api, len(TEXT)))
    assert patch(api, upload_id, 0, TEXT).status_code == 500
    assert api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).status_code == 404
    finished = head(api, upload_id)
    assert finished.status_code == 200
    assert finished.headers["upload-offset"] == str(len(TEXT))
    record = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert record["state"] == "quarantined"
    assert record["sha256"] == hashlib.sha256(TEXT).hexdigest()
    assert len(calls) == 2


def test_concatenation(api: Api) -> None:
    first, second = partial(api, b"hello, "), partial(api, b"world\n")
    assert api.client.get(f"/v1/files/{first}", headers=api.auth()).status_code == 404
    response = final(api, first, second)
    assert response.status_code == 201
    assert LOCATION.fullmatch(response.headers["location"])
    final_id = id_of(response)
    file = api.client.get(f"/v1/files/{final_id}", headers=api.auth()).json()
    assert file["size"] == 13
    assert file["sha256"] == hashlib.sha256(b"hello, world\n").hexdigest()
    joined = head(api, final_id)
    assert joined.headers["upload-offset"] == "13"
    assert joined.headers["upload-length"] == "13"
    assert joined.headers["upload-concat"] == f"final;{BASE}{first} {BASE}{second}"
    assert head(api, first).headers["upload-concat"] == "partial"


def test_concatenation_unfinished(api: Api) -> None:
    first = partial(api, b"hello, ", send=False)
    second = partial(api, b"world\n", send=False)
    assert patch(api, second, 0, b"wor").status_code == 204
    final_id = id_of(final(api, first, second))
    waiting = head(api, final_id)
    assert waiting.status_code == 200
    assert "upload-offset" not in waiting.headers
    assert waiting.headers["upload-length"] == "13"
    assert api.client.get(f"/v1/files/{final_id}", headers=api.auth()).status_code == 404
    assert patch(api, first, 0, b"hello, ").status_code == 204
    assert "upload-offset" not in head(api, final_id).headers
    assert patch(api, second, 3, b"ld\n").status_code == 204
    assert head(api, final_id).headers["upload-offset"] == "13"
    file = api.client.get(f"/v1/files/{final_id}", headers=api.auth()).json()
    assert file["size"] == 13
    assert file["sha256"] == hashlib.sha256(b"hello, world\n").hexdigest()


def test_concatenation_unfinished_with_deferred_part(api: Api) -> None:
    first = partial(api, b"abc")
    second = id_of(create(api, None, **{"Upload-Concat": "partial"}))
    final_id = id_of(final(api, first, second))
    waiting = head(api, final_id).headers
    assert "upload-length" not in waiting
    assert "upload-defer-length" not in waiting
    assert patch(api, second, 0, b"de", **{"Upload-Length": "2"}).status_code == 204
    assert head(api, final_id).headers["upload-offset"] == "5"


def _final_of(*part_ids: str) -> str:
    return "final;" + " ".join(BASE + part for part in part_ids)


def _terminated_partial(api: Api) -> str:
    upload_id = partial(api, b"def")
    assert delete(api, upload_id).status_code == 204
    return upload_id


def _expired_partial(api: Api) -> str:
    upload_id = partial(api, b"def", send=False)
    expire(api, upload_id)
    return upload_id


ConcatOf = Callable[[Api, str], str]
LENGTH_3 = {"Upload-Length": "3"}
INVALID = (400, "tus_concat_invalid")
FINAL_CASES = [
    # (id, Upload-Concat given a complete partial, extra headers, body, (status, code))
    ("other-tenant", lambda api, p: _final_of(p, partial(api, b"d", who="b")), {}, b"", INVALID),
    ("not-partial", lambda api, p: _final_of(p, id_of(create(api, 3))), {}, b"", INVALID),
    ("duplicate", lambda api, p: _final_of(p, p), {}, b"", INVALID),
    ("missing", lambda api, p: _final_of(p, new_id()), {}, b"", INVALID),
    ("terminated", lambda api, p: _final_of(p, _terminated_partial(api)), {}, b"", INVALID),
    ("foreign-url", lambda api, p: f"final;https://elsewhere.example/f/{p}", {}, b"", INVALID),
    ("with-length", lambda api, p: _final_of(p), LENGTH_3, b"", (400, "tus_invalid_header")),
    ("no-parts", lambda api, p: "final;", {}, b"", (400, "tus_invalid_header")),
    ("with-body", lambda api, p: _final_of(p), OCTET, b"x", (403, "tus_final_immutable")),
]


@pytest.mark.parametrize(
    ("concat_of", "extra", "body", "expected"),
    [
        *(pytest.param(*case[1:], id=case[0]) for case in FINAL_CASES),
        pytest.param(
            lambda api, p: _final_of(p, _expired_partial(api)),
            {},
            b"",
            INVALID,
            id="expired",
        ),
    ],
)
def test_invalid_final_is_refused(
    api: Api, concat_of: ConcatOf, extra: dict[str, str], body: bytes, expected: tuple[int, str]
) -> None:
    concat = concat_of(api, partial(api, b"abc"))
    headers = tus(api, **{"Upload-Concat": concat}, **extra)
    response = api.client.post(BASE, headers=headers, content=body or None)
    assert response.status_code == expected[0], response.text
    assert_problem(response, expected[1])
    with api.runtime.db.session() as session:
        finals = session.scalar(
            select(func.count()).select_from(UploadRow).where(UploadRow.concat == "final")
        )
    assert finals == 0


async def _patch_while_other_tenant_calls(api: Api, upload_id: str, method: str) -> tuple[int, str]:
    """Tenant b sends ``method`` for the id while tenant a's PATCH is mid-body."""
    transport = httpx.ASGITransport(app=api.client.app)
    reading, release = asyncio.Event(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"abc"
        reading.set()  # the server asked for more: it holds the upload's lock
        await release.wait()
        yield b"def"

    headers = {**TUS, **OCTET, "Upload-Offset": "0"}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        owner = asyncio.create_task(
            client.patch(BASE + upload_id, headers={**headers, **api.auth("a")}, content=body())
        )
        await asyncio.wait_for(reading.wait(), 10)
        intruder = await client.request(
            method, BASE + upload_id, headers={**headers, **api.auth("b")}, content=b"xyz"
        )
        release.set()
        done = await asyncio.wait_for(owner, 10)
    return intruder.status_code, f"{done.status_code} {done.text}"


# A DELETE that took the lock before checking the tenant used to cancel the owner's PATCH.
@pytest.mark.parametrize("method", ["HEAD", "PATCH", "DELETE"])
def test_other_tenant_cannot_interrupt_a_patch(api: Api, method: str) -> None:
    upload_id = id_of(create(api, 6))
    intruder, owner = asyncio.run(_patch_while_other_tenant_calls(api, upload_id, method))
    assert intruder == 404
    assert owner == "204 ", owner
    assert head(api, upload_id).headers["upload-offset"] == "6"


# --- CORS and absolute URLs ----------------------------------------------------------------

AppFactory = Callable[..., tuple[TestClient, dict[str, str]]]


# Database and storage pairs: both databases on local disk, and S3 (a real SeaweedFS) once;
# the storage code does not depend on the database, and every pair costs a full run.
BACKENDS = ["sqlite-local", "postgresql-local", "sqlite-s3"]


@pytest.fixture(params=BACKENDS)
def backends(request: pytest.FixtureRequest) -> tuple[str, str]:
    database, _, storage = str(request.param).partition("-")
    return database, storage


@pytest.fixture
def database_url(backends: tuple[str, str], request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backends[0] == "sqlite":
        return f"sqlite:///{tmp_path / 'filegate.db'}"
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
def settings(
    backends: tuple[str, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The whole protocol on local disk and on S3."""
    without_filegate_env(monkeypatch, tmp_path)
    extra: dict[str, str] = {}
    if backends[1] == "s3":
        server = request.getfixturevalue("s3_server")
        extra = s3_settings(server, request.getfixturevalue("s3_bucket"), monkeypatch)
    migrate.upgrade(database_url)
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, **extra)


@pytest.fixture
def make_app(settings: Settings) -> Iterator[AppFactory]:
    """Apps on the test database with extra settings; returns a client and an auth header."""
    with ExitStack() as stack:

        def make(**overrides: object) -> tuple[TestClient, dict[str, str]]:
            storage = {
                name: getattr(settings, name)
                for name in ("storage_url", "s3_endpoint_url", "s3_region", "s3_addressing_style")
            }
            custom = load_settings(
                data_dir=settings.data_dir,
                database_url=settings.database_url,
                **storage,
                **overrides,
            )
            runtime, _ = build_runtime(custom)
            stack.callback(runtime.db.dispose)
            key = create_key(runtime.db, tenant="tenant-a", scopes=ALL_SCOPES)[1]
            client = TestClient(create_app(runtime), raise_server_exceptions=False)
            stack.enter_context(client)
            return client, {"Authorization": f"Bearer {key}"}

        yield make


def _header_list(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def test_cors_preflight_and_exposed_headers(make_app: AppFactory) -> None:
    client, auth = make_app(cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    preflight = client.options(
        BASE,
        headers={
            **origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "upload-offset,tus-resumable",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "patch" in _header_list(preflight.headers["access-control-allow-methods"])
    allowed = _header_list(preflight.headers["access-control-allow-headers"])
    assert {"upload-offset", "tus-resumable"} <= allowed
    created = client.post(
        BASE, headers={**auth, **TUS, **origin, **OCTET, "Upload-Length": "5"}, content=b"hi"
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == "https://app.example"
    exposed = _header_list(created.headers["access-control-expose-headers"])
    assert {"location", "upload-offset"} <= exposed
    stranger = client.options(
        BASE, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"}
    )
    assert "access-control-allow-origin" not in stranger.headers


FORWARDED = {"Forwarded": "proto=https;host=files.example.com"}
X_FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.com"}


@pytest.mark.parametrize(
    ("overrides", "headers", "origin"),
    [
        pytest.param({"trust_forwarded_headers": True}, FORWARDED, "https://files.example.com"),
        pytest.param({"trust_forwarded_headers": True}, X_FORWARDED, "https://files.example.com"),
        pytest.param({}, FORWARDED, "http://testserver", id="untrusted-forwarded"),
        pytest.param({}, X_FORWARDED, "http://testserver", id="untrusted-x-forwarded"),
        pytest.param({"public_url": "https://cdn.example/"}, FORWARDED, "https://cdn.example"),
    ],
)
def test_location_origin(
    make_app: AppFactory, overrides: dict[str, object], headers: dict[str, str], origin: str
) -> None:
    client, auth = make_app(**overrides)
    response = client.post(BASE, headers={**auth, **TUS, **headers, "Upload-Length": "5"})
    assert response.status_code == 201
    assert re.fullmatch(rf"{re.escape(origin)}/v1/tus/{ULID}", response.headers["location"])


def test_a_final_that_can_never_be_joined_fails_alone(settings: Settings, sandbox: Sandbox) -> None:
    # Two deferred-length parts that together pass the profile's size: the final used to be
    # retried on every later partial PATCH of the tenant, which then all answered 413.
    small = {"default": builtin_profiles()["default"].model_copy(update={"max_size": 1000})}
    with running_api(settings.model_copy(update={"profiles": small}), sandbox) as api:
        first, second = (id_of(create(api, None, **{"Upload-Concat": "partial"})) for _ in "ab")
        doomed = final(api, first, second)
        assert doomed.status_code == 201, doomed.text
        doomed_id = doomed.headers["location"].rsplit("/", 1)[1]
        body = b"x" * 600
        for part in (first, second):
            sent = patch(api, part, 0, body, **{"Upload-Length": str(len(body))})
            assert sent.status_code == 204, sent.text
        gone = head(api, doomed_id)
        assert gone.status_code == 410
        # The tenant's other uploads are not held up by it.
        third = partial(api, b"a small part")
        joined = final(api, third, **{"Upload-Metadata": f"filename {b64(b'notes.txt')}"})
        assert joined.status_code == 201, joined.text
        assert patch(api, partial(api, b"more", send=False), 0, b"more").status_code == 204


# --- where a finished upload's bytes go ----------------------------------------------------


def test_a_finished_upload_leaves_nothing_in_the_uploads_area(api: Api) -> None:
    """Two PATCHes (the first leaves a tail on S3); once complete the bytes are the file's in
    quarantine and no piece of the upload is left to pay for."""
    data = TEXT * 3
    upload_id = id_of(create(api, len(data)))
    assert patch(api, upload_id, 0, data[:30]).status_code == 204
    assert patch(api, upload_id, 30, data[30:]).status_code == 204
    storage = api.runtime.storage
    assert b"".join(storage.read(Area.QUARANTINE, upload_id)) == data
    assert upload_id not in set(storage.keys(Area.UPLOADS))
    record = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("backends", ["sqlite-s3"], indirect=True)
def test_on_s3_a_small_upload_is_written_once(api: Api) -> None:
    """Less than a part: the completing PATCH PUTs the bytes into quarantine, instead of a
    tail object written, read back, PUT again as the sealed upload and copied to quarantine
    (15 S3 requests, the bytes sent three times and read once, became 6)."""
    storage = api.runtime.storage
    with s3_requests(storage.client) as calls:  # type: ignore[attr-defined]
        upload_id = id_of(create(api, len(TEXT)))
        assert patch(api, upload_id, 0, TEXT).status_code == 204
    assert calls.count("PutObject") == 1
    assert not {"GetObject", "CopyObject", "CreateMultipartUpload"} & set(calls)
    assert len(calls) <= 6, calls
    assert b"".join(storage.read(Area.QUARANTINE, upload_id)) == TEXT


def test_a_crash_before_the_last_offset_is_recorded_loses_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last bytes are durable (on S3 already the quarantined object) but the process died
    before the offset moved: the upload is still at its old offset, and the client's retry
    finishes it with the right bytes and sha256."""
    real = uploads_service.advance
    calls: list[int] = []

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # the first PATCH advances; the completing one dies
            raise RuntimeError("the process died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(uploads_service, "advance", dies_once)
    upload_id = id_of(create(api, len(TEXT)))
    assert patch(api, upload_id, 0, TEXT[:10]).status_code == 204
    assert patch(api, upload_id, 10, TEXT[10:]).status_code == 500
    assert_offset(api, upload_id, 10)
    assert api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).status_code == 404
    assert patch(api, upload_id, 10, TEXT[10:]).status_code == 204
    record = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert record["state"] == "quarantined"
    assert record["sha256"] == hashlib.sha256(TEXT).hexdigest()
    assert b"".join(api.runtime.storage.read(Area.QUARANTINE, upload_id)) == TEXT


def test_an_upload_changed_meanwhile_leaves_no_quarantined_object(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offset guard refuses the completing PATCH: nothing it stored is left in quarantine
    for a file no row will name."""
    monkeypatch.setattr(uploads_service, "advance", lambda *_args, **_kw: False)
    upload_id = id_of(create(api, len(TEXT)))
    assert patch(api, upload_id, 0, TEXT).status_code == 409
    assert not api.runtime.storage.exists(Area.QUARANTINE, upload_id)


@pytest.mark.parametrize("sanitised", [False, True], ids=["served-as-sent", "sanitised-copy"])
def test_a_promoted_file_is_in_clean_only(api: Api, sanitised: bool) -> None:
    """A clean file's served bytes are in the clean area and nothing of it is left in
    quarantine: the upload was moved there, or a sanitised copy (a photo's EXIF removed)
    was written there and the upload deleted."""
    data = jpeg_with_exif(orientation=6) if sanitised else TEXT
    name = b"photo.jpg" if sanitised else b"notes.txt"
    metadata = {"Upload-Metadata": f"filename {b64(name)}"}
    upload_id = id_of(create(api, len(data), **metadata))
    assert patch(api, upload_id, 0, data).status_code == 204
    api.inspect(5)
    record = api.client.get(f"/v1/files/{upload_id}", headers=api.auth()).json()
    assert (record["state"], record["sanitized"]) == ("clean", sanitised)
    storage = api.runtime.storage
    served = b"".join(storage.read(Area.CLEAN, upload_id))
    assert hashlib.sha256(served).hexdigest() == record["sha256"]
    assert (served == data) is not sanitised
    assert not storage.exists(Area.QUARANTINE, upload_id)
