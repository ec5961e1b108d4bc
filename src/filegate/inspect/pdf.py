"""PDF: active content, polyglot layouts, and a sanitiser that strips what can run.

Every indirect object is visited, including those packed in object streams (qpdf lists them in
``pdf.objects``), with the trailer and every dictionary and array nested directly inside them.
A name counts as a key or as a value, after the parser has decoded ``#xx`` escapes, so
``/J#61vaScript`` is ``/JavaScript``. Names in strings and content streams are not PDF syntax
and are not looked at.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, TypeGuard

from filegate.domain import Finding, SanitizeMode
from filegate.inspect.base import InspectorReport, Limits, Sample, internal_error

# pikepdf (qpdf) is imported in the functions that parse, so the API process, which needs only
# CODES, never loads it; a repeated import is a dict lookup.
if TYPE_CHECKING:
    import pikepdf

# Real documents hold thousands to tens of thousands of objects; each visit costs a Python call,
# so past this the file is a parser bomb, not a document.
MAX_OBJECTS = 200_000
# Acrobat accepts the header anywhere in the first 1024 bytes (PDF 1.7, implementation note 13).
HEADER_WINDOW = 1024
_CHUNK = 1024 * 1024

CODES: dict[str, str] = {
    "pdf_invalid": "The file is not a PDF that can be parsed.",
    "pdf_encrypted": "The PDF is encrypted, so its content cannot be fully inspected.",
    "pdf_too_complex": f"The PDF holds more than {MAX_OBJECTS:,} objects; inspection stopped.",
    "pdf_javascript": "The PDF carries JavaScript.",
    "pdf_auto_action": "The PDF runs an action on opening or on page and field events.",
    "pdf_launch": "The PDF can launch a program or open a local file.",
    "pdf_embedded_file": "The PDF carries an embedded file.",
    "pdf_rich_media": "The PDF carries rich media (Flash, video, 3D).",
    "pdf_xfa": "The PDF carries an XFA form, which has its own scripting.",
    "pdf_submit_form": "The PDF can submit form data to a URL.",
    "pdf_link": "The PDF links to a URI.",
    "pdf_header_offset": "The %PDF- header is not at offset 0, a polyglot trick.",
    "pdf_trailing_data": "Data follows the last %%EOF, where a second format can hide.",
    "pdf_polyglot": "A ZIP local file header is inside the PDF: it is an archive too.",
    "pdf_sanitize_failed": "A sanitised copy could not be written.",
}

# Links are followed only when a reader clicks them; the profile decides (allow_pdf_links).
INFORMATIONAL_CODES: frozenset[str] = frozenset({"pdf_link"})

# A name, as a dictionary key or as a value, that makes the PDF do more than draw pages.
_NAME_CODES: dict[str, str] = {
    "/JavaScript": "pdf_javascript",
    "/JS": "pdf_javascript",
    "/OpenAction": "pdf_auto_action",
    "/AA": "pdf_auto_action",
    "/Launch": "pdf_launch",
    "/EmbeddedFile": "pdf_embedded_file",
    "/EmbeddedFiles": "pdf_embedded_file",
    # A file specification's /EF holds embedded files even when they omit /Type /EmbeddedFile.
    "/EF": "pdf_embedded_file",
    "/RichMedia": "pdf_rich_media",
    "/RichMediaExecute": "pdf_rich_media",
    "/XFA": "pdf_xfa",
    "/SubmitForm": "pdf_submit_form",
    "/URI": "pdf_link",
}
# What the sanitiser removes: everything above except links.
_STRIP_NAMES = frozenset(name for name, code in _NAME_CODES.items() if code != "pdf_link")
# PDF whitespace (ISO 32000-1, table 1).
_WHITESPACE = b"\x00\t\n\x0c\r "
# A local file header with a plausible "version needed" (at most 6.3), to skip chance matches.
_ZIP_LOCAL_HEADER = re.compile(rb"PK\x03\x04[\x00-\x3f]\x00")
_EOF = b"%%EOF"
_OVERLAP = 5


# What the copy no longer has: the stripped names, and the bytes around the document that
# qpdf does not write (a header offset, trailing data, an appended archive) or its encryption.
_STRIPPED_CODES = frozenset(
    {
        *(code for name, code in _NAME_CODES.items() if name in _STRIP_NAMES),
        "pdf_header_offset",
        "pdf_trailing_data",
        "pdf_polyglot",
        "pdf_encrypted",
    }
)

Found = dict[str, Finding]


class _TooComplexError(Exception):
    pass


def _note(found: Found, code: str, message: str) -> None:
    """Keep the first finding for each code."""
    found.setdefault(code, Finding(code, message))


def _changes(findings: tuple[Finding, ...]) -> tuple[str, ...]:
    removed = sorted({f.code for f in findings} & _STRIPPED_CODES)
    rewritten = "re-saved by qpdf"
    return (rewritten, f"removed: {', '.join(removed)}") if removed else (rewritten,)


def inspect_pdf(sample: Sample, limits: Limits) -> InspectorReport:
    """Findings for active content and polyglot layout; a stripped copy if asked for."""
    import pikepdf  # noqa: PLC0415 - qpdf loads in the sandbox, never in the API

    found: Found = {}
    try:
        for finding in _layout_findings(sample.path):
            found.setdefault(finding.code, finding)
        sanitized = _inspect_document(sample, found)
    except (pikepdf.PdfError, OSError, EOFError) as exc:  # qpdf's word on a damaged file
        reason = _reason(exc, sample.path)
        _note(found, "pdf_invalid", f"the file cannot be read as a PDF: {reason}")
        sanitized = False
    except Exception as exc:  # anything else is our own bug: fail closed, but say so
        failed = internal_error("PDF", exc)
        found.setdefault(failed.code, failed)
        sanitized = False
    findings = tuple(found.values())
    if not sanitized:
        return InspectorReport(findings=findings)
    changes = _changes(findings)
    return InspectorReport(
        findings, sanitized=True, sanitized_type="application/pdf", changes=changes
    )


def _inspect_document(sample: Sample, found: Found) -> bool:
    """Walk every object into ``found``; return True when a sanitised copy was written."""
    import pikepdf  # noqa: PLC0415

    try:
        pdf = pikepdf.open(sample.path)
    except pikepdf.PasswordError:
        _note(found, "pdf_encrypted", "the PDF needs a password to open")
        return False
    with pdf:
        if pdf.is_encrypted:
            _note(found, "pdf_encrypted", "the PDF is encrypted (it opens without a password)")
        try:
            for finding in _active_content(pdf):
                found.setdefault(finding.code, finding)
        except _TooComplexError:
            _note(found, "pdf_too_complex", f"more than {MAX_OBJECTS:,} objects")
            return False
        mode = sample.sanitize_mode("pdf")
        needed = not _STRIPPED_CODES.isdisjoint(found)
        if mode is SanitizeMode.NEVER or (mode is SanitizeMode.WHEN_NEEDED and not needed):
            return False
        assert sample.sanitized_path is not None  # a mode other than NEVER promises a path
        return _write_sanitized(pdf, sample.sanitized_path, found)


def _reason(exc: Exception, *paths: str) -> str:
    """The parser's complaint without our storage paths: printable, one line, bounded."""
    text = str(exc) or type(exc).__name__
    for path in paths:
        text = text.replace(path, "file")
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:200]


# --- the file's layout, read once in chunks -------------------------------------------------


def _layout_findings(path: str) -> list[Finding]:
    with open(path, "rb") as file:
        head = file.read(HEADER_WINDOW)
        file.seek(0)
        eof_end, tail_has_data, zip_at = _scan_body(file)
        size = file.seek(0, os.SEEK_END)
    found = []
    offset = head.find(b"%PDF-")
    if offset < 0:
        found.append(Finding("pdf_invalid", f"no %PDF- header in the first {HEADER_WINDOW} bytes"))
    elif offset > 0:
        message = f"the %PDF- header starts at byte {offset}"
        found.append(Finding("pdf_header_offset", message, where=f"byte {offset}"))
    if eof_end is None:
        found.append(Finding("pdf_invalid", "no %%EOF marker: the file is truncated"))
    elif tail_has_data:  # whitespace and NUL padding (some writers add kilobytes) hold nothing
        message = f"{size - eof_end} bytes follow the last %%EOF"
        found.append(Finding("pdf_trailing_data", message, where=f"byte {eof_end}"))
    if zip_at is not None:
        message = f"a ZIP local file header at byte {zip_at}"
        found.append(Finding("pdf_polyglot", message, where=f"byte {zip_at}"))
    return found


def _scan_body(file: BinaryIO) -> tuple[int | None, bool, int | None]:
    """End of the last %%EOF, whether non-whitespace follows it, first ZIP header offset."""
    eof_end: int | None = None
    tail_has_data = False
    zip_at: int | None = None
    carry = b""
    position = 0
    while chunk := file.read(_CHUNK):
        window = carry + chunk
        base = position - len(carry)
        if zip_at is None and (match := _ZIP_LOCAL_HEADER.search(window)):
            zip_at = base + match.start()
        at = window.rfind(_EOF)
        if at >= 0:
            eof_end = base + at + len(_EOF)
            tail_has_data = bool(window[at + len(_EOF) :].translate(None, _WHITESPACE))
        elif eof_end is not None and chunk.translate(None, _WHITESPACE):
            tail_has_data = True
        position += len(chunk)
        carry = window[-_OVERLAP:]
    return eof_end, tail_has_data, zip_at


# --- the object graph ---------------------------------------------------------------------


def _walk(pdf: pikepdf.Pdf) -> Iterator[tuple[pikepdf.Object, str]]:
    """Every object with where it sits: the trailer and each indirect object, and the
    dictionaries and arrays nested directly in them (indirect ones are visited on their own).

    Children are listed after the caller has seen their parent, so a caller that deletes an
    entry also prunes it from the walk.
    """
    import pikepdf  # noqa: PLC0415

    roots = pdf.objects
    if len(roots) > MAX_OBJECTS:
        raise _TooComplexError
    visits = itertools.count(1)
    labelled = itertools.chain(
        [(pdf.trailer, "the trailer")],
        # pikepdf hands some scalars back as Python values (no objgen); they hold no names.
        (
            (root, "object {} {}".format(*root.objgen))
            for root in roots
            if isinstance(root, pikepdf.Object)
        ),
    )
    for root, where in labelled:
        pending = [root]
        while pending:
            if next(visits) > MAX_OBJECTS:
                raise _TooComplexError
            obj = pending.pop()
            yield obj, where
            pending.extend(_direct_containers(obj))


def _is_dict(obj: object) -> TypeGuard[pikepdf.Object]:
    """A dictionary or a stream (whose dictionary pikepdf exposes directly)."""
    import pikepdf  # noqa: PLC0415

    return isinstance(obj, pikepdf.Dictionary | pikepdf.Stream)


def _values(obj: pikepdf.Object) -> list[object]:
    """Entries of a dictionary or stream, items of an array, nothing for anything else.

    pikepdf hands numbers back as Python numbers, hence ``object``.
    """
    import pikepdf  # noqa: PLC0415

    if _is_dict(obj):
        return [value for _, value in obj.items()]
    if isinstance(obj, pikepdf.Array):
        return list(obj)
    return []


def _direct_containers(obj: pikepdf.Object) -> list[pikepdf.Object]:
    import pikepdf  # noqa: PLC0415

    return [
        value
        for value in _values(obj)
        if isinstance(value, pikepdf.Dictionary | pikepdf.Array) and not value.is_indirect
    ]


def _name(obj: object) -> str | None:
    import pikepdf  # noqa: PLC0415

    if not isinstance(obj, pikepdf.Name):
        return None
    try:
        return str(obj)
    except UnicodeDecodeError:  # not UTF-8, so none of the names looked for
        return None


def _opens_at_page(action: object) -> bool:
    """True for an /OpenAction that only shows a page: a destination or a plain /GoTo."""
    import pikepdf  # noqa: PLC0415

    if isinstance(action, pikepdf.Array):
        return True
    if not isinstance(action, pikepdf.Dictionary):
        return False
    # /Next would chain another action; /SD is PDF 2.0's structure destination.
    keys = set(action.keys()) - {"/Type", "/SD"}
    destination = action.get("/D")
    return (
        _name(action.get("/S")) == "/GoTo"
        and keys == {"/S", "/D"}
        and isinstance(destination, pikepdf.Array | pikepdf.Name | pikepdf.String)
    )


def _flagged_names(obj: pikepdf.Object) -> Iterator[tuple[str, str]]:
    """(code, name) for each active name in ``obj`` itself, key or value."""
    import pikepdf  # noqa: PLC0415

    if _is_dict(obj):
        for key, value in obj.items():
            benign = key == "/OpenAction" and _opens_at_page(value)
            if key in _NAME_CODES and not benign:
                yield _NAME_CODES[key], key
            if (name := _name(value)) in _NAME_CODES:
                yield _NAME_CODES[name], name
        return
    # An array's items, or an indirect object that is a bare name.
    for value in list(obj) if isinstance(obj, pikepdf.Array) else [obj]:
        if (name := _name(value)) in _NAME_CODES:
            yield _NAME_CODES[name], name


def _active_content(pdf: pikepdf.Pdf) -> Iterator[Finding]:
    for obj, where in _walk(pdf):
        for code, name in _flagged_names(obj):
            yield Finding(code, f"{name} in {where}", where=where)


# --- sanitising ------------------------------------------------------------------------------


def _is_active(value: object) -> bool:
    """A dictionary that is itself active content: a script, launch or submit action, a
    rich-media annotation, an embedded file stream."""
    return _is_dict(value) and any(
        _name(value.get(key)) in _STRIP_NAMES for key in ("/S", "/Subtype", "/Type")
    )


def _unlink_active(obj: pikepdf.Object) -> None:
    """Drop references to active dictionaries; qpdf does not write unreferenced objects."""
    import pikepdf  # noqa: PLC0415

    if _is_dict(obj):
        for key in [key for key, value in obj.items() if _is_active(value)]:
            del obj[key]
    elif isinstance(obj, pikepdf.Array):
        for index in reversed(range(len(obj))):
            if _is_active(obj[index]):
                del obj[index]


def _strip_names(obj: pikepdf.Object) -> None:
    """Delete active keys, entries whose value is an active name, and such array items."""
    import pikepdf  # noqa: PLC0415

    if _is_dict(obj):
        doomed = [
            key
            for key, value in obj.items()
            if (key in _STRIP_NAMES and not (key == "/OpenAction" and _opens_at_page(value)))
            or _name(value) in _STRIP_NAMES
        ]
        for key in doomed:
            del obj[key]
    elif isinstance(obj, pikepdf.Array):
        for index in reversed(range(len(obj))):
            if _name(obj[index]) in _STRIP_NAMES:
                del obj[index]


def _write_sanitized(pdf: pikepdf.Pdf, target: str, found: Found) -> bool:
    """Strip active content and save to ``target`` (unencrypted, without trailing data)."""
    try:
        # Unlink first, while actions still say what they are; then strip what is left.
        for obj, _ in _walk(pdf):
            _unlink_active(obj)
        for obj, _ in _walk(pdf):
            _strip_names(obj)
        pdf.save(target)
    except Exception as exc:  # a hostile file may break the writer; never the caller
        with contextlib.suppress(OSError):
            os.unlink(target)
        _note(found, "pdf_sanitize_failed", f"qpdf could not write it: {_reason(exc, target)}")
        return False
    return True
