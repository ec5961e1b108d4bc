"""The inspection pipeline: every check runs, and the profile (plus defaults) decides."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from filegate.domain import Action, FileState, InspectionPolicy
from filegate.inspect import DEFAULT_ACTIONS, FINDING_CODES, INFORMATIONAL_NAME_CODES
from filegate.inspect.deep import INFORMATIONAL_CODES
from filegate.inspect.pipeline import Inspection, inspect_file, with_default_actions
from tests.unit import test_inspect_office as office

IMAGES = InspectionPolicy(
    name="images",
    max_size=10 * 1024 * 1024,
    extensions=frozenset({"png", "jpg", "jpeg"}),
    types=frozenset({"image/png", "image/jpeg"}),
)
DOCUMENTS = InspectionPolicy(
    name="documents",
    max_size=10 * 1024 * 1024,
    extensions=frozenset({"csv", "txt"}),
    types=frozenset({"text/csv"}),
)
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def png_bytes() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def run(
    tmp_path: Path,
    data: bytes,
    name: str | None,
    *,
    declared: str | None = None,
    policy: InspectionPolicy = IMAGES,
) -> Inspection:
    path = tmp_path / "01J0000000000000000000000A"  # stored under an id, like storage does
    path.write_bytes(data)
    return inspect_file(
        path, original_name=name, declared_type=declared, size=len(data), policy=policy
    )


def codes(inspection: Inspection) -> list[str]:
    return [finding.code for finding in inspection.verdict.findings]


def test_benign_png_is_clean(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "photo.png", declared="image/png")
    assert result.verdict.state is FileState.CLEAN
    assert result.verdict.findings == ()
    assert result.verdict.detected_type == "image/png"
    assert result.display_name == "photo.png"


def test_html_named_png_is_a_mismatch(tmp_path: Path) -> None:
    result = run(tmp_path, HTML, "photo.png")
    assert result.verdict.state is FileState.REJECTED
    assert codes(result) == ["type_not_allowed", "type_mismatch", "active_content"]
    assert result.verdict.detected_type == "text/html"
    mismatch = result.verdict.findings[1]
    assert mismatch.message == "content is text/html but the name says .png"


def test_dangerous_double_extension_is_rejected(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "shell.php.png")
    assert result.verdict.state is FileState.REJECTED
    assert codes(result) == ["name_dangerous_extension"]


def test_null_byte_name_is_rejected_with_every_finding(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "evil.php\x00.png")
    assert result.verdict.state is FileState.REJECTED
    assert codes(result) == [
        "name_null_byte",
        "name_dangerous_extension",
        "extension_not_allowed",
        "type_mismatch",
    ]


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    result = run(tmp_path, b"", "photo.png")
    assert result.verdict.state is FileState.REJECTED
    assert codes(result) == ["empty_file"]
    assert result.verdict.detected_type == "application/x-empty"


def test_empty_file_is_clean_when_the_profile_allows_it(tmp_path: Path) -> None:
    policy = InspectionPolicy(
        name="empty-ok",
        max_size=IMAGES.max_size,
        extensions=IMAGES.extensions,
        types=IMAGES.types,
        allow_empty=True,
    )
    result = run(tmp_path, b"", "photo.png", policy=policy)
    assert result.verdict.state is FileState.CLEAN
    assert codes(result) == []


def test_too_large_is_rejected(tmp_path: Path) -> None:
    policy = InspectionPolicy(
        name="tiny", max_size=10, extensions=IMAGES.extensions, types=IMAGES.types
    )
    result = run(tmp_path, png_bytes(), "photo.png", policy=policy)
    assert codes(result) == ["file_too_large"]
    assert result.verdict.state is FileState.REJECTED


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "setup.exe",
            ["name_dangerous_extension", "extension_not_allowed", "type_mismatch"],
            id="exe",
        ),
        pytest.param("photo.gif", ["extension_not_allowed", "type_mismatch"], id="not-listed"),
        pytest.param("photo", ["extension_not_allowed"], id="none"),
        pytest.param(None, ["name_missing", "extension_not_allowed"], id="no-name"),
    ],
)
def test_extension_not_allowed(tmp_path: Path, name: str | None, expected: list[str]) -> None:
    result = run(tmp_path, png_bytes(), name)
    assert codes(result) == expected
    assert result.verdict.state is FileState.REJECTED


@pytest.mark.parametrize(
    ("declared", "mismatch"),
    [
        pytest.param("image/gif", True, id="other-type"),
        pytest.param("IMAGE/PNG; q=1", False, id="same-with-parameters"),
        pytest.param("application/octet-stream", False, id="uninformative"),
        pytest.param("", False, id="empty"),
        pytest.param(None, False, id="absent"),
    ],
)
def test_declared_type_is_reported_but_accepted_by_default(
    tmp_path: Path, declared: str | None, mismatch: bool
) -> None:
    result = run(tmp_path, png_bytes(), "photo.png", declared=declared)
    assert result.verdict.state is FileState.CLEAN
    assert codes(result) == (["declared_type_mismatch"] if mismatch else [])


def test_declared_type_message_names_the_values(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "photo.png", declared="image/gif")
    assert (
        result.verdict.findings[0].message
        == "content is image/png but the client declared image/gif"
    )


def test_malformed_declared_type_is_not_echoed(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "photo.png", declared="x" * 5000)
    (finding,) = result.verdict.findings
    assert finding.code == "declared_type_mismatch"
    assert "xxx" not in finding.message


def test_informational_name_finding_stays_clean_but_is_listed(tmp_path: Path) -> None:
    result = run(tmp_path, png_bytes(), "pho\u202eto.png")
    assert result.verdict.state is FileState.CLEAN
    assert codes(result) == ["name_bidi_chars"]
    assert result.display_name == "photo.png"


def test_policy_can_make_an_informational_finding_reject(tmp_path: Path) -> None:
    policy = InspectionPolicy(
        name="strict",
        max_size=IMAGES.max_size,
        extensions=IMAGES.extensions,
        types=IMAGES.types,
        actions={"name_bidi_chars": Action.REJECT},
    )
    result = run(tmp_path, png_bytes(), "pho\u202eto.png", policy=policy)
    assert result.verdict.state is FileState.REJECTED


def test_policy_can_accept_a_mismatch(tmp_path: Path) -> None:
    policy = InspectionPolicy(
        name="lenient",
        max_size=IMAGES.max_size,
        extensions=IMAGES.extensions,
        types=IMAGES.types | {"image/gif"},
        actions={"type_mismatch": Action.ACCEPT},
    )
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00"
    result = run(tmp_path, gif + b"\x01\x00\x00\x02\x02D\x01\x00;", "photo.png", policy=policy)
    assert codes(result) == ["type_mismatch"]
    assert result.verdict.state is FileState.CLEAN


def test_plain_text_is_accepted_for_a_csv_profile(tmp_path: Path) -> None:
    # A single column has no commas, so libmagic can only say text/plain.
    result = run(tmp_path, b"name\nalice\nbob\n", "names.csv", policy=DOCUMENTS)
    assert result.verdict.detected_type == "text/plain"
    assert result.verdict.state is FileState.CLEAN


def test_unreadable_file_fails_closed(tmp_path: Path) -> None:
    result = inspect_file(
        tmp_path / "absent", original_name="photo.png", declared_type=None, size=5, policy=IMAGES
    )
    assert codes(result) == ["inspection_failed"]
    assert result.verdict.state is FileState.REJECTED
    assert result.verdict.detected_type is None
    assert str(tmp_path) not in result.verdict.findings[0].message


def test_defaults_sit_under_the_policy() -> None:
    policy = InspectionPolicy(
        name="p",
        max_size=1,
        extensions=frozenset(),
        types=frozenset(),
        actions={"name_missing": Action.REJECT},
    )
    merged = with_default_actions(policy).actions
    assert merged["name_missing"] is Action.REJECT
    assert merged["name_bidi_chars"] is Action.ACCEPT
    assert set(DEFAULT_ACTIONS) == (
        INFORMATIONAL_NAME_CODES | INFORMATIONAL_CODES | {"declared_type_mismatch"}
    )


def test_every_code_is_described() -> None:
    assert all(description.strip() for description in FINDING_CODES.values())
    assert {
        "empty_file",
        "file_too_large",
        "extension_not_allowed",
        "type_not_allowed",
        "type_mismatch",
        "declared_type_mismatch",
        "inspection_failed",
        "name_encoded_traversal",
    } <= FINDING_CODES.keys()


OFFICE = InspectionPolicy(
    name="office",
    max_size=10 * 1024 * 1024,
    extensions=frozenset({"docx"}),
    types=frozenset({"application/vnd.openxmlformats-officedocument.wordprocessingml.document"}),
)


def test_a_docm_renamed_docx_is_a_docm(tmp_path: Path) -> None:
    # The package's main part declares the macro-enabled type, whatever the name says.
    result = run(tmp_path, office.docx(main=office.DOCM_MAIN), "agenda.docx", policy=OFFICE)
    assert result.verdict.detected_type == "application/vnd.ms-word.document.macroenabled.12"
    assert {"type_mismatch", "type_not_allowed"} <= set(codes(result))


def test_an_ooxml_package_is_known_by_its_structure_not_its_entry_order(tmp_path: Path) -> None:
    # Word's templates list customXml/ first; libmagic then says application/octet-stream.
    parts = {f"customXml/item{n}.xml": b"<a/>" for n in range(1, 4)}
    data = office.package({**parts, **office.docx_parts()})
    result = run(tmp_path, data, "letter.docx", policy=OFFICE)
    assert result.verdict.state is FileState.CLEAN, codes(result)
    assert result.verdict.detected_type == next(iter(OFFICE.types))
