"""The true type of an Office file, from its structure: OOXML and ODF packages, OLE files.

libmagic names a package from the first few zip entries, so a Word file whose zip lists
``customXml/`` before ``word/`` (as Word's templates do) is "application/octet-stream" to it,
and a .docm is a .docx. The package itself says what it is: OOXML in the content type of its
main part (``[Content_Types].xml``), ODF in its ``mimetype`` entry.
"""

from __future__ import annotations

import os
import posixpath
import struct
import zipfile
from collections.abc import Mapping
from types import MappingProxyType
from xml.etree.ElementTree import ParseError

import olefile
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

# [Content_Types].xml lists a few dozen types; a real one is a few KiB.
MAX_CONTENT_TYPES_BYTES = 1024 * 1024
# The ODF mimetype entry is one short line.
MAX_MIMETYPE_BYTES = 256

_CONTENT_TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_OOXML = "application/vnd.openxmlformats-officedocument."

# The content type of a package's main part -> the package's media type.
MAIN_PART_TYPES: Mapping[str, str] = MappingProxyType(
    {
        f"{_OOXML}wordprocessingml.document.main+xml": f"{_OOXML}wordprocessingml.document",
        f"{_OOXML}wordprocessingml.template.main+xml": f"{_OOXML}wordprocessingml.template",
        "application/vnd.ms-word.document.macroenabled.main+xml": (
            "application/vnd.ms-word.document.macroenabled.12"
        ),
        "application/vnd.ms-word.template.macroenabledtemplate.main+xml": (
            "application/vnd.ms-word.template.macroenabled.12"
        ),
        f"{_OOXML}spreadsheetml.sheet.main+xml": f"{_OOXML}spreadsheetml.sheet",
        f"{_OOXML}spreadsheetml.template.main+xml": f"{_OOXML}spreadsheetml.template",
        "application/vnd.ms-excel.sheet.macroenabled.main+xml": (
            "application/vnd.ms-excel.sheet.macroenabled.12"
        ),
        "application/vnd.ms-excel.template.macroenabled.main+xml": (
            "application/vnd.ms-excel.template.macroenabled.12"
        ),
        "application/vnd.ms-excel.sheet.binary.macroenabled.main": (
            "application/vnd.ms-excel.sheet.binary.macroenabled.12"
        ),
        f"{_OOXML}presentationml.presentation.main+xml": f"{_OOXML}presentationml.presentation",
        f"{_OOXML}presentationml.slideshow.main+xml": f"{_OOXML}presentationml.slideshow",
        f"{_OOXML}presentationml.template.main+xml": f"{_OOXML}presentationml.template",
        "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml": (
            "application/vnd.ms-powerpoint.presentation.macroenabled.12"
        ),
        "application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml": (
            "application/vnd.ms-powerpoint.slideshow.macroenabled.12"
        ),
        "application/vnd.ms-powerpoint.template.macroenabled.main+xml": (
            "application/vnd.ms-powerpoint.template.macroenabled.12"
        ),
    }
)
_ODF_PREFIX = b"application/vnd.oasis.opendocument."
# The relationship type (transitional and strict) whose target is the package's main part.
_OFFICE_DOCUMENT = "/officeDocument"


def package_type(path: str | os.PathLike[str]) -> str | None:
    """The media type the OOXML or ODF package at ``path`` declares, or None for any other
    file (or a package that declares nothing this module knows)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _ooxml_type(archive) or odf_type(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None


def content_types(archive: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]] | None:
    """``[Content_Types].xml`` as (defaults by lowercase extension, overrides by lowercase
    part name without the leading slash); None when the package has none (not OOXML).

    One too large or malformed to read declares nothing here; the office inspector's part
    scan reports what is wrong with it.
    """
    info = _entry(archive, "[content_types].xml")
    if info is None:
        return None
    if info.file_size > MAX_CONTENT_TYPES_BYTES:
        return {}, {}
    try:
        root = fromstring(archive.read(info), forbid_dtd=True)
    except (DefusedXmlException, ParseError):
        return {}, {}
    defaults: dict[str, str] = {}
    overrides: dict[str, str] = {}
    for element in root:
        content_type = element.get("ContentType", "").strip().lower()
        if element.tag == f"{_CONTENT_TYPES_NS}Default":
            defaults[element.get("Extension", "").lower().lstrip(".")] = content_type
        elif element.tag == f"{_CONTENT_TYPES_NS}Override":
            overrides[element.get("PartName", "").lower().lstrip("/")] = content_type
    return defaults, overrides


def _ooxml_type(archive: zipfile.ZipFile) -> str | None:
    declared = content_types(archive)
    if declared is None:
        return None
    main = _main_part(archive)
    present = {info.filename.lower() for info in archive.infolist()}
    candidates = [main] if main is not None else sorted(present)
    for part in candidates:
        if part in present and (content_type := part_type(part, *declared)) in MAIN_PART_TYPES:
            return MAIN_PART_TYPES[content_type]
    return None


def part_type(part: str, defaults: dict[str, str], overrides: dict[str, str]) -> str:
    """A part's content type: its Override, else the Default for its extension (lowercase)."""
    extension = posixpath.splitext(part)[1].lstrip(".")
    return overrides.get(part) or defaults.get(extension, "")


def _main_part(archive: zipfile.ZipFile) -> str | None:
    """The target of the package's officeDocument relationship (``_rels/.rels``), lowercase."""
    info = _entry(archive, "_rels/.rels")
    if info is None or info.file_size > MAX_CONTENT_TYPES_BYTES:
        return None
    try:
        root = fromstring(archive.read(info), forbid_dtd=True)
    except (DefusedXmlException, ParseError):
        return None
    for relationship in root:
        if relationship.get("Type", "").endswith(_OFFICE_DOCUMENT):
            target = str(relationship.get("Target", ""))
            return posixpath.normpath(target.lstrip("/")).lower()
    return None


def odf_type(archive: zipfile.ZipFile) -> str | None:
    """The ODF media type in the package's ``mimetype`` entry, or None."""
    info = _entry(archive, "mimetype")
    if info is None or info.file_size > MAX_MIMETYPE_BYTES:
        return None
    declared = archive.read(info).strip()
    if not declared.startswith(_ODF_PREFIX) or not declared.isascii():
        return None
    return declared.decode("ascii").lower()


def _entry(archive: zipfile.ZipFile, lower_name: str) -> zipfile.ZipInfo | None:
    for info in archive.infolist():
        if info.filename.lower() == lower_name:
            return info
    return None


# The stream that makes an OLE compound file a Word, Excel or PowerPoint document.
_OLE_STREAMS = (
    ("WordDocument", "application/msword"),
    ("Workbook", "application/vnd.ms-excel"),
    ("Book", "application/vnd.ms-excel"),
    ("PowerPoint Document", "application/vnd.ms-powerpoint"),
)


def ole_type(path: str | os.PathLike[str]) -> str | None:
    """The legacy Office type of an OLE compound file, from the streams it holds; libmagic
    calls many of them just "CDFV2" or "x-ole-storage"."""
    try:
        with olefile.OleFileIO(os.fspath(path)) as ole:
            for stream, media_type in _OLE_STREAMS:
                if ole.exists(stream):
                    return media_type
    except (OSError, ValueError, EOFError, IndexError, struct.error):
        return None
    return None
