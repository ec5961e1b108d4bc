"""File-name sanitising: one table row per rule, then properties that hold for any input."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from filegate.inspect.names import (
    BIDI_CHARS,
    INFORMATIONAL_NAME_CODES,
    MAX_NAME_BYTES,
    NAME_CODES,
    ZERO_WIDTH_CHARS,
    sanitize_filename,
)
from filegate.inspect.pipeline import FINDING_CODES

LONG_MULTIBYTE = "é" * 150 + "日本" * 40 + ".png"  # 300 + 240 bytes of stem

CASES = [
    # (id, raw, display, extension, codes)
    ("plain", "photo.png", "photo.png", "png", set()),
    ("upper-extension", "Photo.PNG", "Photo.PNG", "png", set()),
    ("missing-none", None, "file", None, {"name_missing"}),
    ("missing-empty", "", "file", None, {"name_missing"}),
    ("double-extension", "shell.php.jpg", "shell.php.jpg", "jpg", {"name_dangerous_extension"}),
    ("mixed-case-php5", "shell.pHp5", "shell.pHp5", "php5", {"name_dangerous_extension"}),
    ("phar", "x.phar", "x.phar", "phar", {"name_dangerous_extension"}),
    ("html", "page.html", "page.html", "html", {"name_dangerous_extension"}),
    ("svg-not-dangerous", "logo.svg", "logo.svg", "svg", set()),
    (
        "trailing-dot",
        "evil.php.",
        "evil.php",
        "php",
        {"name_dangerous_extension", "name_trailing_dots"},
    ),
    ("trailing-spaces", "report.pdf . ", "report.pdf", "pdf", {"name_trailing_dots"}),
    (
        "ntfs-data-stream",
        "evil.php::$DATA",
        "evil.php",
        "php",
        {"name_ntfs_stream", "name_dangerous_extension"},
    ),
    ("colon-named-stream", "a.txt:hidden", "a.txt_hidden", "txt_hidden", {"name_colon"}),
    ("ntfs-dollar-stream", "a.txt:x:$DATA", "a.txt", "txt", {"name_ntfs_stream"}),
    ("colon-in-a-time", "Meeting 10:30.txt", "Meeting 10_30.txt", "txt", {"name_colon"}),
    (
        "iis-colon-trick",
        "file.asp:.jpg",
        "file.asp_.jpg",
        "jpg",
        {"name_colon", "name_dangerous_extension"},
    ),
    ("dotted-host-name", "www.example.com.pdf", "www.example.com.pdf", "pdf", set()),
    ("inner-desktop-extension", "setup.exe.jpg", "setup.exe.jpg", "jpg", set()),
    (
        "last-desktop-extension",
        "invoice.pdf.exe",
        "invoice.pdf.exe",
        "exe",
        {"name_dangerous_extension"},
    ),
    (
        "encoded-nul",
        "evil.php%00.jpg",
        "evil.php",
        "php",
        {"name_null_byte", "name_dangerous_extension"},
    ),
    (
        "raw-nul",
        "evil.php\x00.jpg",
        "evil.php",
        "php",
        {"name_null_byte", "name_dangerous_extension"},
    ),
    (
        "encoded-traversal",
        "..%2f..%2fetc%2fpasswd",
        "%2f..%2fetc%2fpasswd",
        "%2fetc%2fpasswd",
        {"name_encoded_traversal", "name_leading_dots"},
    ),
    ("encoded-dots", "%2e%2e%2fx.txt", "%2e%2e%2fx.txt", "txt", {"name_encoded_traversal"}),
    ("encoded-not-traversal", "100%25.txt", "100%25.txt", "txt", set()),
    ("posix-traversal", "../../etc/passwd", "passwd", None, {"name_path_stripped"}),
    (
        "windows-path",
        "C:\\Windows\\x.exe",
        "x.exe",
        "exe",
        {"name_path_stripped", "name_dangerous_extension"},
    ),
    ("drive-relative", "D:notes.txt", "notes.txt", "txt", {"name_path_stripped"}),
    ("trailing-separator", "photos/", "file", None, {"name_path_stripped"}),
    (
        "right-to-left-override",
        "\u202egnp.exe",
        "gnp.exe",
        "exe",
        {"name_bidi_chars", "name_dangerous_extension"},
    ),
    ("bidi-isolate", "a\u2067b\u2069.png", "ab.png", "png", {"name_bidi_chars"}),
    ("zero-width-inside", "pho\u200bto.p\ufeffng", "photo.png", "png", {"name_zero_width_chars"}),
    (
        "zero-width-hides-php",
        "shell.p\u200dhp",
        "shell.php",
        "php",
        {"name_zero_width_chars", "name_dangerous_extension"},
    ),
    ("control-chars", "a\tb\r\n\x7f.txt", "ab.txt", "txt", {"name_control_chars"}),
    ("lone-surrogate", "a\udc80b.txt", "ab.txt", "txt", {"name_control_chars"}),
    (
        "full-width",
        "\uff53\uff48\uff45\uff4c\uff4c\uff0e\uff50\uff48\uff50",
        "shell.php",
        "php",
        {"name_dangerous_extension"},
    ),
    ("full-width-slash", "a\uff0fb.txt", "b.txt", "txt", {"name_path_stripped"}),
    ("device-con", "CON", "_CON", None, {"name_reserved_device"}),
    ("device-lowercase-with-extension", "nul.jpg", "_nul.jpg", "jpg", {"name_reserved_device"}),
    ("device-superscript", "COM\u00b9.txt", "_COM1.txt", "txt", {"name_reserved_device"}),
    ("device-lpt0", "lpt0.tar.gz", "_lpt0.tar.gz", "gz", {"name_reserved_device"}),
    ("not-a-device", "console.txt", "console.txt", "txt", set()),
    (
        "htaccess",
        ".htaccess",
        "htaccess",
        None,
        {"name_leading_dots", "name_dangerous_extension"},
    ),
    ("dotfile", ".bashrc.txt", "bashrc.txt", "txt", {"name_leading_dots"}),
    ("option-like", "---rf.txt", "rf.txt", "txt", {"name_leading_dots"}),
    ("only-dots", "...", "file", None, {"name_trailing_dots"}),
]


@pytest.mark.parametrize(
    ("raw", "display", "extension", "codes"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_sanitize_filename(
    raw: str | None, display: str, extension: str | None, codes: set[str]
) -> None:
    result = sanitize_filename(raw)
    assert result.display == display
    assert result.extension == extension
    assert {finding.code for finding in result.findings} == codes


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        pytest.param(LONG_MULTIBYTE, "png", id="multibyte-keeps-extension"),
        pytest.param("a" * 300 + ".jpeg", "jpeg", id="ascii-keeps-extension"),
        pytest.param("é" * 300, None, id="no-extension"),
        pytest.param("a." + "b" * 300, None, id="extension-too-long-to-keep"),
    ],
)
def test_long_names_are_capped_at_255_bytes(raw: str, extension: str | None) -> None:
    result = sanitize_filename(raw)
    encoded = result.display.encode("utf-8")
    assert len(encoded) <= MAX_NAME_BYTES
    assert len(encoded) > MAX_NAME_BYTES - 4  # cut at a character boundary, not far short
    assert result.extension == extension
    assert [finding.code for finding in result.findings] == ["name_too_long"]


def test_long_name_keeps_a_prefix_of_the_stem() -> None:
    display = sanitize_filename(LONG_MULTIBYTE).display
    assert display.endswith(".png")
    assert LONG_MULTIBYTE.startswith(display.removesuffix(".png"))


def test_findings_have_one_entry_per_code_and_known_codes() -> None:
    result = sanitize_filename("a\x00b%00c")
    assert [finding.code for finding in result.findings] == ["name_null_byte"]
    for case in CASES:
        assert case[4] <= FINDING_CODES.keys()


def test_code_tables_agree() -> None:
    assert INFORMATIONAL_NAME_CODES.issubset(NAME_CODES)
    assert NAME_CODES.keys() <= FINDING_CODES.keys()


def test_messages_do_not_echo_the_raw_name() -> None:
    result = sanitize_filename("/srv/secret/\u202eevil\x00.php")
    for finding in result.findings:
        assert "/srv" not in finding.message
        assert "\u202e" not in finding.message


# Characters that exercise every rule, so Hypothesis hits the interesting paths often.
_TRICKY = list("./\\:-%0 2efCONULPTMa_\x00\t\x7f\u00b9\u00e9\u65e5") + sorted(
    BIDI_CHARS | ZERO_WIDTH_CHARS | {"\uff0e", "\uff0f", "\u3000", "\u0301", "\udc80"}
)
NAMES = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec=None, exclude_categories=())),
    st.text(alphabet=st.sampled_from(_TRICKY)),
    st.text(alphabet=st.sampled_from(_TRICKY), min_size=200, max_size=400),
)
_FORBIDDEN = frozenset("/\\\x00") | BIDI_CHARS | ZERO_WIDTH_CHARS


@settings(max_examples=500)
@given(NAMES)
@example("a" * 254 + "\u0301.b")
@example(". \u3000-x")
def test_display_name_is_always_safe(raw: str) -> None:
    display = sanitize_filename(raw).display
    assert display
    assert len(display.encode("utf-8")) <= MAX_NAME_BYTES
    assert not _FORBIDDEN.intersection(display)
    assert all(unicodedata.category(char) not in ("Cc", "Cs") for char in display)
    assert not display.startswith((".", "-"))
    assert not display.endswith((".", " "))


@settings(max_examples=500)
@given(NAMES)
def test_sanitising_is_idempotent(raw: str) -> None:
    once = sanitize_filename(raw).display
    assert sanitize_filename(once).display == once
