"""Regenerate docs/inspection.md: the pipeline, and every finding code with its OWASP controls.

    .venv/bin/python tools/inspection_doc.py           # rewrite docs/inspection.md
    .venv/bin/python tools/inspection_doc.py --check   # exit 1 if it is out of date

The code descriptions come from ``FINDING_CODES`` and the limits from the code, so only the
mapping to OWASP lives here; tests/unit/test_inspection_doc.py fails when a code has none.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from filegate.config import builtin_profiles
from filegate.domain import Finding, InspectionLimits
from filegate.inspect import FINDING_CODES, with_default_actions
from filegate.inspect.sandbox import SandboxLimits
from filegate.services import inspection

DOC = Path(__file__).resolve().parents[1] / "docs" / "inspection.md"
CHEAT_SHEET = "https://cheatsheetseries.owasp.org/cheatsheets/File_Upload_Cheat_Sheet.html"
ASVS = "https://github.com/OWASP/ASVS/blob/master/5.0/en/0x14-V5-File-Handling.md"
ASVS_V1 = "https://github.com/OWASP/ASVS/blob/master/5.0/en/0x10-V1-Encoding-and-Sanitization.md"

# Codes the inspection job adds outside the pipeline.
WORKER_CODES = inspection.WORKER_CODES

# File Upload Cheat Sheet sections, by their headings.
EXTENSION = "Extension Validation"
ALLOWED = "Extension Validation (List Allowed Extensions)"
CONTENT_TYPE = "Content-Type Validation"
SIGNATURE = "File Signature Validation"
FILENAME = "Filename Sanitization"
CONTENT = "File Content Validation"
STORAGE = "File Storage Location"
LIMITS = "Upload and Download Limits"


@dataclass(frozen=True, slots=True)
class Control:
    """Where a check comes from: File Upload Cheat Sheet sections and ASVS 5.0.0 requirements."""

    cheat_sheet: tuple[str, ...]
    asvs: tuple[str, ...]

    def cell(self) -> str:
        return f"Cheat sheet: {'; '.join(self.cheat_sheet)}. ASVS: {', '.join(self.asvs)}"


def _c(*cheat_sheet: str, asvs: tuple[str, ...]) -> Control:
    return Control(cheat_sheet, asvs)


# One row per code, in pipeline order. ASVS numbers are requirement ids of OWASP ASVS 5.0.0
# (cite them as v5.0.0-5.2.2); "V5.3" alone names a section where no one requirement fits.
MAPPING: dict[str, Control] = {
    # names
    "name_missing": _c(FILENAME, asvs=("5.4.1",)),
    "name_path_stripped": _c(FILENAME, asvs=("5.3.2",)),
    "name_encoded_traversal": _c(EXTENSION, FILENAME, asvs=("5.3.2",)),
    "name_null_byte": _c(EXTENSION, FILENAME, asvs=("5.2.2", "5.3.2")),
    "name_control_chars": _c(FILENAME, asvs=("5.3.2", "5.4.2")),
    "name_bidi_chars": _c(EXTENSION, FILENAME, asvs=("5.2.2", "5.4.2")),
    "name_zero_width_chars": _c(FILENAME, asvs=("5.4.2",)),
    "name_ntfs_stream": _c(EXTENSION, FILENAME, asvs=("5.3.2",)),
    "name_colon": _c(FILENAME, asvs=("5.3.2",)),
    "name_dangerous_extension": _c(EXTENSION, asvs=("5.2.2", "5.3.1")),
    "name_trailing_dots": _c(EXTENSION, FILENAME, asvs=("5.3.2",)),
    "name_leading_dots": _c(FILENAME, asvs=("5.3.2",)),
    "name_reserved_device": _c(FILENAME, asvs=("5.3.2",)),
    "name_too_long": _c(FILENAME, asvs=("5.4.2",)),
    # size, extension and true type
    "empty_file": _c(LIMITS, asvs=("5.1.1", "5.2.1")),
    "file_too_large": _c(LIMITS, asvs=("5.2.1",)),
    "extension_not_allowed": _c(ALLOWED, asvs=("5.2.2",)),
    "type_not_allowed": _c(CONTENT_TYPE, SIGNATURE, asvs=("5.2.2",)),
    "type_mismatch": _c(SIGNATURE, asvs=("5.2.2",)),
    "declared_type_mismatch": _c(CONTENT_TYPE, asvs=("5.2.2",)),
    "type_disagreement": _c(SIGNATURE, asvs=("5.2.2",)),
    # code
    "executable": _c(ALLOWED, CONTENT, asvs=("5.2.2", "5.3.1")),
    "script": _c(ALLOWED, CONTENT, asvs=("5.2.2", "5.3.1")),
    "active_content": _c(CONTENT, asvs=("5.2.2",)),
    "pickle": _c(CONTENT, asvs=("5.2.2", "1.5.2")),
    "server_config": _c(FILENAME, asvs=("5.3.1",)),
    # the sandbox
    "inspection_failed": _c(CONTENT, LIMITS, asvs=("5.2.1",)),
    "inspection_timeout": _c(CONTENT, LIMITS, asvs=("5.2.1",)),
    # archives
    "archive_not_allowed": _c(CONTENT, asvs=("5.1.1", "5.2.2")),
    "archive_too_deep": _c(LIMITS, asvs=("5.2.3",)),
    "archive_too_many_entries": _c(LIMITS, asvs=("5.2.3",)),
    "archive_path_traversal": _c(FILENAME, asvs=("5.3.3",)),
    "archive_link_entry": _c(CONTENT, asvs=("5.2.5",)),
    "archive_duplicate_entry": _c(FILENAME, asvs=("5.3.3",)),
    "archive_overlapping_entries": _c(LIMITS, asvs=("5.2.3",)),
    "archive_encrypted": _c(CONTENT, asvs=("5.2.2",)),
    "archive_too_large": _c(LIMITS, asvs=("5.2.3",)),
    "archive_ratio": _c(LIMITS, asvs=("5.2.3",)),
    "archive_size_mismatch": _c(LIMITS, asvs=("5.2.3",)),
    "archive_invalid": _c(CONTENT, asvs=("5.2.2",)),
    # images
    "image_too_many_pixels": _c(LIMITS, asvs=("5.2.6",)),
    "image_too_many_frames": _c(LIMITS, asvs=("5.2.1", "5.2.6")),
    "image_invalid": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "image_truncated": _c(CONTENT, asvs=("5.2.2",)),
    "image_trailing_data": _c(CONTENT, asvs=("5.2.2",)),
    "image_embedded_markup": _c(CONTENT, asvs=("5.2.2",)),
    "image_polyglot": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "image_metadata_removed": _c(CONTENT, asvs=("5.2.2",)),
    "image_frames_dropped": _c(CONTENT, asvs=("5.2.2",)),
    "image_sanitize_failed": _c(CONTENT, asvs=("5.2.2",)),
    # SVG and XML
    "svg_not_allowed": _c(ALLOWED, asvs=("5.2.2", "1.3.4")),
    "svg_too_large": _c(LIMITS, asvs=("5.2.1",)),
    "xml_dtd": _c(CONTENT, asvs=("1.5.1",)),
    "svg_invalid": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "svg_active_content": _c(CONTENT, asvs=("1.3.4",)),
    "svg_external_reference": _c(CONTENT, asvs=("1.3.4",)),
    "svg_sanitize_failed": _c(CONTENT, asvs=("1.3.4",)),
    # PDF
    "pdf_invalid": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "pdf_encrypted": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_too_complex": _c(LIMITS, asvs=("5.2.1",)),
    "pdf_javascript": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_auto_action": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_launch": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_embedded_file": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_rich_media": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_xfa": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_submit_form": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_link": _c(CONTENT, asvs=("5.2.2",)),
    "pdf_header_offset": _c(SIGNATURE, asvs=("5.2.2",)),
    "pdf_trailing_data": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "pdf_polyglot": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "pdf_sanitize_failed": _c(CONTENT, asvs=("5.2.2",)),
    # office
    "office_invalid": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "office_encrypted": _c(CONTENT, asvs=("5.2.2",)),
    "office_too_complex": _c(LIMITS, asvs=("5.2.3",)),
    "office_macros": _c(CONTENT, asvs=("5.2.2",)),
    "office_macros_suspicious": _c(CONTENT, asvs=("5.2.2",)),
    "office_external_relationship": _c(CONTENT, asvs=("5.2.2",)),
    "office_link": _c(CONTENT, asvs=("5.2.2",)),
    "office_dde": _c(CONTENT, asvs=("5.2.2",)),
    "office_embedded_object": _c(CONTENT, asvs=("5.2.2",)),
    # audio and video
    "media_invalid": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "media_container_mismatch": _c(CONTENT_TYPE, SIGNATURE, asvs=("5.2.2",)),
    "media_too_long": _c(LIMITS, asvs=("5.2.3",)),
    "media_too_many_pixels": _c(LIMITS, asvs=("5.2.3",)),
    "media_too_many_streams": _c(LIMITS, asvs=("5.2.3",)),
    "media_attachment": _c(CONTENT, asvs=("5.2.2",)),
    "media_polyglot": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    "media_trailing_data": _c(SIGNATURE, CONTENT, asvs=("5.2.2",)),
    # ClamAV
    "malware_found": _c(CONTENT, asvs=("5.4.3",)),
    "scanner_unavailable": _c(CONTENT, asvs=("5.4.3",)),
    # the inspection job
    "stored_object_missing": _c(STORAGE, asvs=("V5.3 File Storage",)),
    "profile_unknown": _c(ALLOWED, asvs=("5.1.1",)),
}


def _size(size: int) -> str:
    gib, mib = 1024**3, 1024**2
    return f"{size // gib} GiB" if size % gib == 0 else f"{size / mib:g} MiB"


def _allowed(limits: InspectionLimits) -> str:
    flags = {
        "archives": limits.allow_archives,
        "encrypted archive entries": limits.allow_encrypted_archives,
        "SVG": limits.allow_svg,
        "macros": limits.allow_macros,
        "PDF links": limits.allow_pdf_links,
    }
    allowed = [name for name, on in flags.items() if on]
    refused = [name for name, on in flags.items() if not on]
    return f"{', '.join(allowed)} allowed; {', '.join(refused)} refused"


INTRO = """\
# Inspection

<!-- Generated by tools/inspection_doc.py from the code; do not edit by hand. -->

Every upload waits in quarantine until it is inspected. Each check reports *findings* with a
stable code; none stops the others, and hostile input never raises. The upload's **profile**
then decides: its `actions` map a code to `reject` or `accept`, and one rejecting finding
rejects the file. Codes a profile does not name take the default action below: name clean-ups,
links, what sanitising left out of an image and the client's declared type are accepted;
everything else rejects. Two limits shift the defaults: `allow_pdf_links = false` makes
`pdf_link` reject, and `allow_macros = true` makes `office_macros` accept.

**Sanitising** is set per kind with `sanitize = "always" | "when_needed" | "never"` (one mode
for all kinds, or a table with `images`, `svg` and `pdf`). Images are re-encoded from their
pixels without EXIF, GPS, XMP, text chunks, comments or trailing bytes, but with what people
see kept: the ICC colour profile (parsed and re-serialised by LittleCMS; an invalid one is
dropped and reported), every frame of an animation, the EXIF orientation applied to the pixels,
and a JPEG's own quantisation tables. PDFs are re-saved by qpdf without active content or bytes
outside the document; SVGs (where a profile accepts them) go through svg-hush. Under
`when_needed` (the default for images and PDF) a file with nothing to remove is served
byte-identical to the upload. When a clean file has a sanitised copy, the copy is stored and
served; the file record keeps the upload's `received_sha256` and `received_size` beside the
served `sha256` and `size`, and `sanitize_changes` says what the copy changed. A finding that
rejects still rejects, copy or not.

**Triage.** `filegate inspect --explain FILE` (offline) and `GET /v1/files/{id}` with an admin
key show each finding's evidence (`where`: a part name, a PDF object, a byte offset, an archive
member, a stream) and the setting that decided it, for example `built-in default: every finding
rejects; set profiles.default.actions.media_attachment = "accept" to accept it`.
"""


PIPELINE = """\
## The pipeline

1. **Name**: the client's name becomes a display name (NFKC, no directories, NUL, control,
   bidi or zero-width characters, no NTFS streams, Windows device names defused, at most
   255 bytes); storage never uses it, and every dot-separated part is checked for server-side
   extensions.
2. **Size and extension**: the profile's maximum size and allowed extensions.
3. **True type**: libmagic reads the first 1 MiB; Google's Magika model judges the file
   independently. Office files are named from their own structure (the main part's content
   type in an OOXML package, the `mimetype` of an ODF one, the streams of an OLE file), since
   libmagic only reads entry order; Markdown that libmagic calls a script (a README quoting
   code) is Markdown when Magika is sure. The type must be one the profile allows and one the
   extension may carry, and a confident Magika that sees another kind of file than libmagic
   rejects it (HEIF and AVIF excepted: to Magika every ISO base media file is an MP4).
4. **Code**: executables, scripts, browser markup and pickles, by either detector's verdict;
   web-server configuration files by name.
5. **Content, by true type**: raster images (PNG, JPEG, GIF, WebP, TIFF, BMP, ICO, HEIC,
   AVIF), SVG, PDF, office documents (OOXML, ODF, legacy OLE, RTF, SYLK), audio and video
   (MP4/MOV/M4A, WebM/Matroska, MP3, Ogg/Opus, WAV, FLAC: demuxed by FFmpeg through PyAV,
   without decoding) and archives (zip, tar, gzip, bzip2, xz). Archive members go through this same
   pipeline, one level deeper, inflated under hard caps.
6. **ClamAV**, last, over clamd's `INSTREAM`, only for files the structural checks passed.
   With `scanner_required = true` a file is never promoted unscanned: it waits in quarantine.
"""


def _pipeline() -> str:
    box, lim = SandboxLimits(), InspectionLimits()
    sandbox = (
        f"Steps 1 to 5 run in a sandbox child process under `RLIMIT_AS` "
        f"({_size(box.memory_bytes)}), a per-file CPU limit ({box.cpu_seconds} s) and a wall "
        f"clock timeout ({box.wall_seconds:g} s); a crash, a timeout or a memory blow-up is a "
        "finding (`inspection_failed`, `inspection_timeout`) and a fresh child, never a "
        "promoted file."
    )
    limits = (
        "Default limits (per profile, under `[profiles.<name>.limits]`): at most "
        f"{lim.max_pixels:,} pixels and {lim.max_frames:,} frames per image; audio and video "
        f"of at most {lim.max_media_seconds // 3600} hours and {lim.max_media_streams} "
        "streams; "
        f"{lim.max_archive_entries:,} archive entries, {lim.max_archive_depth} levels of "
        f"nesting, a {lim.max_archive_ratio}:1 inflation ratio and "
        f"{_size(lim.max_archive_total)} inflated in all; {_allowed(lim)}."
    )
    return (
        "\n\n".join([PIPELINE.rstrip("\n"), textwrap.fill(sandbox, 96), textwrap.fill(limits, 96)])
        + "\n"
    )


def _profiles() -> str:
    rows = [
        f"| `{name}` | {', '.join(sorted(profile.extensions))} | {_size(int(profile.max_size))} | "
        f"{'yes' if profile.limits.allow_archives else 'no'} |"
        for name, profile in builtin_profiles().items()
    ]
    return "\n".join(
        [
            "## Built-in profiles",
            "",
            "A configuration file's `[profiles.*]` replace these (see `configuration.md`).",
            "",
            "| profile | extensions | max size | archives |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def _table() -> str:
    policy = with_default_actions(builtin_profiles()["default"].policy("default"))
    meanings = {**FINDING_CODES, **WORKER_CODES}
    rows = [
        f"| `{code}` | {policy.action_for(Finding(code, '')).value} | {meanings[code]} | "
        f"{control.cell()} |"
        for code, control in MAPPING.items()
    ]
    return "\n".join(
        [
            "## Findings",
            "",
            f"Controls: sections of the [OWASP File Upload Cheat Sheet]({CHEAT_SHEET}) and "
            f"requirements of OWASP ASVS 5.0.0, chapter [V5 File Handling]({ASVS}) (5.x.y) and, "
            f"for XML, SVG and deserialisation, chapter [V1 Encoding and Sanitization]({ASVS_V1})"
            " (1.x.y). The last two rows come from the inspection job, not the pipeline.",
            "",
            "| code | default action | what triggers it | OWASP / ASVS control |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def render() -> str:
    """The whole of docs/inspection.md."""
    return "\n".join([INTRO, _pipeline(), _profiles(), _table()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    missing = sorted(set(FINDING_CODES) - set(MAPPING))
    if missing:
        print(f"no OWASP mapping for: {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render()
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is out of date: run tools/inspection_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
