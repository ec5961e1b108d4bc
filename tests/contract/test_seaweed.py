"""The S3 test server: SeaweedFS answers the S3 calls the object-storage backend makes.

These tests prove the fixture (tests/support/seaweed.py) and pin the behaviours of SeaweedFS that
the backend relies on or must work around, so that a SeaweedFS upgrade that changes one of them
fails here first rather than in the backend's tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.seaweed import S3Server, fresh_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
PART = 5 * MIB


@pytest.fixture(scope="module")
def s3(s3_server: S3Server) -> S3Client:
    return s3_server.client()  # shared per server (see S3Server.client): not closed here


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    return fresh_bucket(s3_server)


def read(s3: S3Client, bucket: str, key: str, byte_range: str | None = None) -> bytes:
    if byte_range is None:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return s3.get_object(Bucket=bucket, Key=key, Range=byte_range)["Body"].read()


def error_of(info: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def keys(s3: S3Client, bucket: str, prefix: str = "") -> list[str]:
    return [
        item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    ]


def multipart_etag(parts: list[bytes]) -> str:
    """S3's ETag of a completed multipart upload: the MD5 of the parts' MD5s, then ``-N``."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def upload_in_parts(s3: S3Client, bucket: str, key: str, parts: list[bytes]) -> str:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done: list[CompletedPartTypeDef] = []
    for number, body in enumerate(parts, start=1):
        etag = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body
        )["ETag"]
        done.append({"PartNumber": number, "ETag": etag})
    result = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": done}
    )
    return result["ETag"]


# --- single objects -------------------------------------------------------------------------------


def test_put_get_list_delete(s3: S3Client, bucket: str) -> None:
    body = b"filegate " * 1000
    put = s3.put_object(Bucket=bucket, Key="clean/a", Body=body, ContentType="text/plain")
    # A single PUT's ETag is the body's MD5, quoted, as on AWS.
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="clean/a")
    assert (head["ContentLength"], head["ContentType"]) == (len(body), "text/plain")
    assert read(s3, bucket, "clean/a") == body
    assert keys(s3, bucket) == ["clean/a"]

    s3.delete_object(Bucket=bucket, Key="clean/a")
    assert keys(s3, bucket) == []
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="clean/a")
    assert error_of(info) == (404, "NoSuchKey")
    # Deleting what is not there succeeds, as on AWS.
    s3.delete_object(Bucket=bucket, Key="clean/a")


def test_ranged_get(s3: S3Client, bucket: str) -> None:
    body = bytes(range(256)) * 64
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    assert read(s3, bucket, "r", "bytes=10-19") == body[10:20]
    assert read(s3, bucket, "r", "bytes=16000-") == body[16000:]
    assert read(s3, bucket, "r", "bytes=-5") == body[-5:]
    ranged = s3.get_object(Bucket=bucket, Key="r", Range="bytes=100-199")
    assert ranged["ContentRange"] == f"bytes 100-199/{len(body)}"
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert error_of(info) == (416, "InvalidRange")


def test_copy_object_between_prefixes(s3: S3Client, bucket: str) -> None:
    body = b"to be promoted"
    s3.put_object(Bucket=bucket, Key="quarantine/x", Body=body, Metadata={"sha256": "abc"})
    s3.copy_object(
        Bucket=bucket, Key="clean/x", CopySource={"Bucket": bucket, "Key": "quarantine/x"}
    )
    s3.delete_object(Bucket=bucket, Key="quarantine/x")
    assert keys(s3, bucket) == ["clean/x"]
    assert read(s3, bucket, "clean/x") == body
    assert s3.head_object(Bucket=bucket, Key="clean/x")["Metadata"] == {"sha256": "abc"}


# --- multipart ------------------------------------------------------------------------------------


def test_multipart_upload(s3: S3Client, bucket: str) -> None:
    parts = [bytes([65 + n]) * PART for n in range(3)] + [b"the short last part"]
    etag = upload_in_parts(s3, bucket, "big", parts)
    assert etag == multipart_etag(parts)
    whole = b"".join(parts)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(whole)
    assert hashlib.sha256(read(s3, bucket, "big")).digest() == hashlib.sha256(whole).digest()
    # A range across the boundary of two parts.
    assert read(s3, bucket, "big", f"bytes={PART - 3}-{PART + 2}") == b"AAABBB"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_parts_below_5_mib_are_refused_at_complete(s3: S3Client, bucket: str) -> None:
    """SeaweedFS enforces S3's minimum part size (5 MiB, all but the last part), as AWS does."""
    with pytest.raises(ClientError) as info:
        upload_in_parts(s3, bucket, "small", [b"a" * (PART - 1), b"b"])
    assert error_of(info) == (400, "EntityTooSmall")
    # One part of any size is a whole upload.
    assert upload_in_parts(s3, bucket, "one", [b"tiny"]) == multipart_etag([b"tiny"])


def test_upload_part_copy_with_a_byte_range(s3: S3Client, bucket: str) -> None:
    source = b"".join(bytes([97 + n]) * MIB for n in range(7))
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    first, last = MIB - 10, MIB - 10 + PART - 1
    copied = s3.upload_part_copy(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange=f"bytes={first}-{last}",
    )["CopyPartResult"]
    tail = s3.upload_part(
        Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2, Body=b"tail"
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": copied["ETag"]},
                {"PartNumber": 2, "ETag": tail["ETag"]},
            ]
        },
    )
    assert read(s3, bucket, "assembled") == source[first : last + 1] + b"tail"


def test_aborted_upload_leaves_nothing(s3: S3Client, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="gone", UploadId=upload, PartNumber=1, Body=b"z" * MIB)
    # An upload in progress is listed, and is no object yet.
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("gone", upload)]
    assert keys(s3, bucket) == []

    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert keys(s3, bucket) == []
    with pytest.raises(ClientError) as info:
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload)
    assert error_of(info) == (404, "NoSuchUpload")


# --- what is refused ------------------------------------------------------------------------------


def test_a_wrong_secret_is_refused(s3_server: S3Server, bucket: str) -> None:
    wrong = ("y" if s3_server.secret_key[0] == "x" else "x") + s3_server.secret_key[1:]
    forged = dataclasses.replace(s3_server, secret_key=wrong).client()
    with pytest.raises(ClientError) as info:
        forged.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert error_of(info) == (403, "SignatureDoesNotMatch")
    stranger = dataclasses.replace(s3_server, access_key="FGNOSUCHKEY000000000").client()
    with pytest.raises(ClientError) as info:
        stranger.list_objects_v2(Bucket=bucket)
    assert error_of(info) == (403, "InvalidAccessKeyId")


def test_an_unsigned_request_is_refused(s3_server: S3Server, bucket: str) -> None:
    config = Config(signature_version=UNSIGNED, s3={"addressing_style": "path"})
    anonymous = boto3.session.Session().client(
        "s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region, config=config
    )
    try:
        with pytest.raises(ClientError) as info:
            anonymous.list_objects_v2(Bucket=bucket)
    finally:
        anonymous.close()
    assert error_of(info) == (403, "AccessDenied")


def test_a_missing_bucket_is_not_created_on_write(s3: S3Client) -> None:
    """``weed mini`` creates buckets on a PUT by default; the fixture turns that off."""
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="filegate-no-such-bucket", Key="k", Body=b"x")
    assert error_of(info) == (404, "NoSuchBucket")
