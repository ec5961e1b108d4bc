"""The tus header parsers: properties that hold for any input, not only the examples we chose."""

from __future__ import annotations

import base64
import binascii
import string
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from filegate.errors import ErrorCode, FilegateError
from filegate.tus.headers import (
    CHECKSUM_ALGORITHMS,
    MAX_CONCAT_PARTS,
    MAX_INTEGER,
    Checksum,
    Concat,
    parse_checksum,
    parse_concat,
    parse_integer,
    parse_metadata,
)

PROPERTY = settings(max_examples=200, deadline=None)
# RFC 9110 token characters: what a metadata key may be made of.
TOKEN = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
B64_ALPHABET = string.ascii_letters + string.digits + "+/="
UNICODE_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: c not in string.digits)

keys = st.text(TOKEN, min_size=1, max_size=16)
# An empty value and no value are the same thing on the wire ("key" vs "key "), so values
# are either absent or non-empty.
values = st.none() | st.text(min_size=1, max_size=40)
metadata = st.dictionaries(keys, values, max_size=8)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode_metadata(pairs: dict[str, str | None], separator: str = ",") -> str:
    return separator.join(
        key if value is None else f"{key} {b64(value.encode())}" for key, value in pairs.items()
    )


def rejects(
    parse: Callable[[str], object], value: str, code: ErrorCode = ErrorCode.TUS_INVALID_HEADER
) -> None:
    with pytest.raises(FilegateError) as caught:
        parse(value)
    assert caught.value.code is code


# --- integers ------------------------------------------------------------------------------


def _integer(value: str) -> int:
    return parse_integer(value, "Upload-Length")


@PROPERTY
@given(st.integers(0, MAX_INTEGER))
@example(0)
@example(MAX_INTEGER)
def test_integer_round_trips(number: int) -> None:
    assert _integer(str(number)) == number


not_plain_digits = st.one_of(
    st.integers(max_value=-1).map(str),
    st.tuples(st.sampled_from("+-"), st.integers(0, MAX_INTEGER)).map(lambda t: f"{t[0]}{t[1]}"),
    st.tuples(
        st.sampled_from([" ", "\t", "\n", "\r\n", "\u00a0", "\u2003"]),
        st.integers(0, MAX_INTEGER).map(str),
        st.booleans(),
    ).map(lambda t: f"{t[0]}{t[1]}" if t[2] else f"{t[1]}{t[0]}"),
    st.tuples(st.integers(0, 10**6).map(str), UNICODE_DIGITS, st.integers(0, 18)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    ),
    st.integers(MAX_INTEGER + 1).map(str),
    st.text(max_size=25).filter(lambda s: not (s.isascii() and s.isdigit())),
)


@PROPERTY
@given(not_plain_digits)
@example("")
@example("٣")
@example("1_000")
@example("1e3")
@example("0x10")
@example("1.0")
@example(str(MAX_INTEGER + 1))
@example("9" * 30)
def test_integer_rejects_anything_but_plain_digits(value: str) -> None:
    rejects(_integer, value)


# --- Upload-Metadata -----------------------------------------------------------------------


@PROPERTY
@given(metadata, st.sampled_from([",", ", "]))
@example({}, ",")
@example({"is_confidential": None, "filename": "résumé.pdf"}, ",")
@example({"k": "\x00,\n \t"}, ",")
def test_metadata_round_trips(pairs: dict[str, str | None], separator: str) -> None:
    assert parse_metadata(encode_metadata(pairs, separator)) == pairs


@PROPERTY
@given(st.text(max_size=300) | st.text(TOKEN + B64_ALPHABET + ", \t", max_size=300))
@example(",")
@example(" , ")
@example("key ")
@example("key  dmFsdWU=")
@example("k dmFsdWU= extra")
@example("ké dmFsdWU=")
@example("k /w==")  # base64 of a byte that is not UTF-8
@example("k é")
def test_metadata_never_fails_with_anything_but_a_filegate_error(text: str) -> None:
    try:
        pairs = parse_metadata(text)
    except FilegateError as exc:
        code = exc.code
    else:
        code = ErrorCode.TUS_INVALID_HEADER
        assert all(isinstance(k, str) and k for k in pairs)
        assert all(v is None or isinstance(v, str) for v in pairs.values())
    assert code is ErrorCode.TUS_INVALID_HEADER


@PROPERTY
@given(st.binary(min_size=1, max_size=40))
def test_metadata_values_must_be_utf8(raw: bytes) -> None:
    header = f"k {b64(raw)}"
    try:
        expected = raw.decode("utf-8")
    except UnicodeDecodeError:
        rejects(parse_metadata, header)
    else:
        assert parse_metadata(header) == {"k": expected}


@PROPERTY
@given(metadata.filter(bool), st.data())
def test_metadata_duplicate_keys_are_rejected(
    pairs: dict[str, str | None], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(pairs)))
    duplicate = {key: data.draw(values)}
    rejects(parse_metadata, encode_metadata(pairs) + "," + encode_metadata(duplicate))


def test_metadata_longer_than_the_cap_is_rejected() -> None:
    rejects(parse_metadata, "k " + "QUFB" * 1100)


# --- Upload-Concat -------------------------------------------------------------------------

ids = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=26)
prefixes = st.sampled_from(["/v1/tus/", "https://files.example/v1/tus/", "http://h:8080/x/"])


def _last_segment(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_concat_partial() -> None:
    assert parse_concat("partial", _last_segment) == Concat(final=False)


@PROPERTY
@given(st.lists(ids, min_size=1, max_size=MAX_CONCAT_PARTS), prefixes, st.sampled_from([" ", "  "]))
def test_concat_final_round_trips_through_the_id_mapper(
    part_ids: list[str], prefix: str, separator: str
) -> None:
    header = "final;" + separator.join(prefix + part for part in part_ids)
    assert parse_concat(header, _last_segment) == Concat(final=True, parts=tuple(part_ids))


def test_concat_final_with_too_many_parts_is_rejected() -> None:
    header = "final;" + " ".join(f"/v1/tus/{n}" for n in range(MAX_CONCAT_PARTS + 1))
    rejects(lambda value: parse_concat(value, _last_segment), header)


@PROPERTY
@given(st.text(max_size=60))
@example("")
@example("final")
@example("final;")
@example("final; \t ")
@example("Final;/v1/tus/A")
@example("PARTIAL")
@example("partial;")
@example(" partial")
@example("partial,final;/v1/tus/A")
@example("final:/v1/tus/A")
@example("final /v1/tus/A")
def test_concat_accepts_only_partial_or_final_with_urls(text: str) -> None:
    kind, _, rest = text.partition(";")
    if text == "partial":
        assert parse_concat(text, str) == Concat(final=False)
    elif kind == "final" and rest.split():
        assert parse_concat(text, str) == Concat(final=True, parts=tuple(rest.split()))
    else:
        rejects(lambda value: parse_concat(value, str), text)


# --- Upload-Checksum -----------------------------------------------------------------------


@PROPERTY
@given(st.sampled_from(CHECKSUM_ALGORITHMS), st.binary(min_size=1, max_size=128))
def test_checksum_round_trips(algorithm: str, digest: bytes) -> None:
    assert parse_checksum(f"{algorithm} {b64(digest)}") == Checksum(algorithm, digest)


@PROPERTY
@given(st.text(TOKEN, min_size=1, max_size=20).filter(lambda a: a not in CHECKSUM_ALGORITHMS))
@example("SHA1")
@example("sha-256")
@example("md4")
@example("crc32c")
def test_checksum_unknown_algorithm(algorithm: str) -> None:
    rejects(parse_checksum, f"{algorithm} {b64(b'digest')}", ErrorCode.TUS_CHECKSUM_ALGORITHM)


def _decodes(text: str) -> bool:
    try:
        return bool(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError):
        return False


@PROPERTY
@given(
    st.sampled_from(CHECKSUM_ALGORITHMS),
    st.text(B64_ALPHABET + "!*-_.~é ", max_size=40).filter(lambda s: not _decodes(s)),
)
@example("sha1", "")
@example("sha1", "abc")
@example("md5", "=YWJj")
@example("crc32", "AAAA AAAA")
@example("sha256", "AAAA_-AA")
def test_checksum_invalid_base64(algorithm: str, encoded: str) -> None:
    rejects(parse_checksum, f"{algorithm} {encoded}")
