"""Parsers for tus request headers. Each returns a value or raises a FilegateError (400)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from filegate.errors import ErrorCode, FilegateError

TUS_VERSION = "1.0.0"
# Extensions in the order the spec lists them; OPTIONS advertises exactly these.
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "expiration",
    "checksum",
    "termination",
    "concatenation",
    "concatenation-unfinished",
)
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256", "sha512", "crc32")
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
# 2**63 - 1: every offset and length fits a signed 64-bit column on every database.
MAX_INTEGER = 2**63 - 1
# Metadata is a handful of short pairs; a cap keeps the DB row and the echo small.
MAX_METADATA_BYTES = 4096
MAX_CONCAT_PARTS = 100

_DIGITS = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _invalid(message: str) -> FilegateError:
    return FilegateError(ErrorCode.TUS_INVALID_HEADER, message)


def parse_integer(value: str, header: str) -> int:
    """A non-negative decimal integer: digits only, no sign, no spaces, at most 2**63 - 1."""
    if not _DIGITS.fullmatch(value):
        raise _invalid(f"{header} must be a non-negative integer.")
    number = int(value)
    if number > MAX_INTEGER:
        raise _invalid(f"{header} is too large.")
    return number


def parse_metadata(value: str) -> dict[str, str | None]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs; values decode as UTF-8.

    Keys are unique, ASCII tokens; a key may come without a value. Invalid base64, a duplicate
    key, or a value that is not UTF-8 is a 400.
    """
    if len(value) > MAX_METADATA_BYTES:
        raise _invalid(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes.")
    pairs: dict[str, str | None] = {}
    if not value.strip():
        return pairs
    for item in value.split(","):
        key, decoded = _metadata_pair(item.strip())
        if key in pairs:
            raise _invalid(f"Upload-Metadata repeats the key {key!r}.")
        pairs[key] = decoded
    return pairs


def format_metadata(pairs: Mapping[str, str | None]) -> str:
    """The ``Upload-Metadata`` header for ``pairs``: the inverse of ``parse_metadata``."""
    return ",".join(
        key if value is None else f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in pairs.items()
    )


def _metadata_pair(item: str) -> tuple[str, str | None]:
    parts = item.split(" ")
    if len(parts) > 2 or not _KEY.fullmatch(parts[0]):
        raise _invalid("Upload-Metadata pairs are 'key base64value', separated by commas.")
    if len(parts) == 1:
        return parts[0], None
    try:
        raw = base64.b64decode(parts[1], validate=True)
        return parts[0], raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid(
            f"Upload-Metadata value for {parts[0]!r} is not valid base64 UTF-8."
        ) from None


@dataclass(frozen=True, slots=True)
class Concat:
    """``Upload-Concat``: a partial upload, or a final one made of the listed partial ids."""

    final: bool
    parts: tuple[str, ...] = ()


def parse_concat(value: str, upload_id_of: object) -> Concat:
    """``partial`` or ``final;<url> <url> ...``; ``upload_id_of(url)`` maps a URL to an id."""
    assert callable(upload_id_of)
    if value == "partial":
        return Concat(final=False)
    kind, _, rest = value.partition(";")
    if kind != "final" or not rest.strip():
        raise _invalid("Upload-Concat is 'partial' or 'final;<upload URL> ...'.")
    urls = rest.split()
    if len(urls) > MAX_CONCAT_PARTS:
        raise _invalid(f"A final upload may join at most {MAX_CONCAT_PARTS} partial uploads.")
    return Concat(final=True, parts=tuple(upload_id_of(url) for url in urls))


@dataclass(frozen=True, slots=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(value: str) -> Checksum:
    """``Upload-Checksum: <algorithm> <base64 digest>``; unknown algorithms are a 400."""
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise FilegateError(
            ErrorCode.TUS_CHECKSUM_ALGORITHM,
            f"Unsupported checksum algorithm {algorithm[:20]!r}; "
            f"supported: {', '.join(CHECKSUM_ALGORITHMS)}.",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Upload-Checksum's digest is not valid base64.") from None
    if not digest:
        raise _invalid("Upload-Checksum has no digest.")
    return Checksum(algorithm, digest)
