"""Office documents: macros, remote templates, DDE, DTDs and encryption.

OOXML and ODF packages are zip files read part by part under a size cap, their XML streamed
through defusedxml with DTDs forbidden. Legacy OLE files (.doc/.xls/.ppt), OLE objects inside
packages (``vbaProject.bin``, embeddings), RTF and SYLK go through oletools. Content decides,
never the name: a macro part is found by its name and by its declared content type, and a
``.docm`` renamed ``.docx`` is a macro-enabled type to the pipeline (``packages``), whatever
parts it has.
"""

from __future__ import annotations

import posixpath
import re
import struct
import zipfile
from collections.abc import Iterator
from typing import IO
from xml.etree.ElementTree import Element, ParseError

import olefile
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring, iterparse

from filegate.domain import Finding
from filegate.inspect.base import InspectorReport, Limits, Sample
from filegate.inspect.packages import content_types, odf_type, part_type

# Office XML compresses ~20:1; a 2.5 MB upload can hold a 50 MB sheet, which is a big real
# spreadsheet. One part larger than this is not inspected and the file fails closed.
MAX_PART_BYTES = 50 * 1024 * 1024
# SYLK is line-based; no real cell record comes near this.
MAX_SYLK_LINE = 64 * 1024

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# BIFF records in a workbook's globals: BOUNDSHEET lists each sheet; its "dt" byte 1 means an
# Excel 4 macro sheet. EOF ends the globals, so the scan stops there.
_BIFF_BOUNDSHEET, _BIFF_EOF, _BIFF_MACRO_SHEET = 0x0085, 0x000A, 1

CODES: dict[str, str] = {
    "office_invalid": "The file is not an Office document that can be parsed.",
    "office_encrypted": "The document is encrypted, so its content cannot be inspected.",
    "office_too_complex": "A part is too large, or there are too many parts, to inspect.",
    "office_macros": "The document carries macros (VBA, Excel 4 or ODF scripts).",
    "office_macros_suspicious": "Macros run on opening and write files or run programs.",
    "office_external_relationship": "The document loads a remote resource when opened "
    "(template, frame, image, OLE link).",
    "office_link": "The document links to a URL (a hyperlink, followed only when clicked).",
    "office_dde": "The document carries DDE, which can run commands.",
    "office_embedded_object": "An RTF document embeds an OLE object or package, the usual "
    "carrier of Office exploits (equation editor, OLE packages).",
    "xml_dtd": "An XML part declares a DTD (XXE, entity expansion).",
}

# Hyperlinks are followed only on a click, as PDF links are. office_macros is the pipeline's to
# weigh against limits.allow_macros; every other finding rejects.
INFORMATIONAL_CODES: frozenset[str] = frozenset({"office_link"})

_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_WORD = frozenset(
    {
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main",
    }
)
_SHEET = frozenset(
    {
        "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "http://purl.oclc.org/ooxml/spreadsheetml/main",
    }
)
_ODF = "urn:oasis:names:tc:opendocument:xmlns:"
_ODF_SCRIPT = _ODF + "script:1.0"
_ODF_FORMULA = "{" + _ODF + "table:1.0}formula"
_ODF_DDE_ELEMENTS = frozenset({"dde-source", "dde-connection-decl", "dde-link"})
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_SCRIPT_URL = re.compile(r"\s*(?:vnd\.sun\.star\.script|macro):", re.IGNORECASE)

_MACRO_TYPES = frozenset(
    {
        "application/vnd.ms-office.vbaproject",
        "application/vnd.ms-office.vbaprojectsignature",
        "application/vnd.ms-word.vbadata+xml",
        "application/vnd.ms-excel.macrosheet+xml",
        "application/vnd.ms-excel.intlmacrosheet+xml",
    }
)
# ODF library indexes: present, empty, in many documents without a line of macro code.
_ODF_LIBRARY_INDEXES = frozenset(
    {"script-lc.xml", "script-lb.xml", "dialog-lc.xml", "dialog-lb.xml"}
)

# The magic number of an AppleDouble file (a macOS resource fork), which is never XML.
_APPLE_DOUBLE = b"\x00\x05\x16\x07"

# Word field instructions (msodde's own test): "DDE" or "DDEAUTO" first.
_DDE_FIELD = re.compile(r"\s*DDE(?:AUTO)?\b", re.IGNORECASE)
# Excel DDE formulas are application|topic!item, e.g. cmd|' /C calc'!A0; a pipe is no operator.
_DDE_FORMULA = re.compile(r"[\w.\-]+\s*\|")
_ODF_DDE_FUNCTION = re.compile(r"\bDDE\s*\(", re.IGNORECASE)
_QUOTED = re.compile(r"\"(?:[^\"]|\"\")*\"|'(?:[^']|'')*'")

Found = dict[str, str]


def inspect_office(sample: Sample, limits: Limits) -> InspectorReport:
    """Findings for an OOXML, ODF, legacy OLE or SYLK document; never raises."""
    found: Found = {}
    try:
        _inspect(sample.path, limits, found)
    except Exception as exc:  # hostile input must become a finding, whatever breaks
        _add(found, "office_invalid", f"cannot be parsed: {_reason(exc, sample.path)}")
    return InspectorReport(findings=tuple(Finding(code, text) for code, text in found.items()))


def _inspect(path: str, limits: Limits, found: Found) -> None:
    with open(path, "rb") as file:
        head = file.read(len(OLE_MAGIC))
    if head.startswith(OLE_MAGIC):
        _inspect_ole(path, found)
    elif head.startswith(b"ID;"):
        _inspect_sylk(path, found)
    elif head.startswith(b"{\\rt"):
        _inspect_rtf(path, found)
    elif head.startswith(b"PK") or zipfile.is_zipfile(path):
        _inspect_package(path, limits, found)
    else:
        _add(found, "office_invalid", "neither an OLE, OOXML, ODF nor SYLK document")


def _add(found: Found, code: str, message: str) -> None:
    """Keep the first message for each code: one finding per code."""
    found.setdefault(code, message)


def _reason(exc: Exception, path: str) -> str:
    text = str(exc).replace(path, "file") or type(exc).__name__
    return _short(text, 200)


def _short(text: str, limit: int = 120) -> str:
    """Untrusted text made fit for a log line: printable, one line, bounded."""
    cleaned = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(cleaned.split())[:limit]


# --- legacy OLE, OLE parts and SYLK, through oletools -------------------------------------------


def _inspect_ole(path: str, found: Found) -> None:
    from filegate.inspect._oletools import crypto  # noqa: PLC0415 - see that module

    with olefile.OleFileIO(path) as ole:
        if ole.exists("EncryptionInfo") or ole.exists("EncryptedPackage"):
            # An encrypted OOXML package: nothing but ciphertext to look at.
            _add(found, "office_encrypted", "an encrypted OOXML package (EncryptionInfo)")
            return
        encrypted = bool(crypto.is_encrypted(ole))
        if _has_macro_sheet(ole):
            _add(found, "office_macros", "Excel 4 (XLM) macro sheet")
    if encrypted:
        _add(found, "office_encrypted", "legacy Office encryption")
    _macro_findings(path, None, found)
    _dde_fields(path, found)


def _dde_fields(path: str, found: Found) -> None:
    from filegate.inspect._oletools import msodde  # noqa: PLC0415

    links = str(msodde.process_file(path, msodde.FIELD_FILTER_DDE))
    if links.strip():
        _add(found, "office_dde", f"DDE field: {_short(links)}")


def _has_macro_sheet(ole: olefile.OleFileIO) -> bool:
    """An Excel 4 macro sheet in the workbook globals. olevba looks only when the file carries
    Excel's CLSID, which Excel itself does not need."""
    for name in ("Workbook", "Book"):
        if not ole.exists(name):
            continue
        stream = ole.openstream(name)
        while len(head := stream.read(4)) == 4:
            kind, size = struct.unpack("<HH", head)
            payload = stream.read(size)
            if kind == _BIFF_EOF:
                break
            if kind == _BIFF_BOUNDSHEET and payload[5:6] == bytes([_BIFF_MACRO_SHEET]):
                return True
    return False


def _macro_findings(source: str, data: bytes | None, found: Found) -> None:
    """VBA and Excel 4 macros in an OLE file (or its bytes), and mraptor's verdict on them."""
    from filegate.inspect._oletools import mraptor, olevba  # noqa: PLC0415

    parser = olevba.VBA_Parser(source, data=data)
    try:
        vba = bool(parser.detect_vba_macros())
        xlm = bool(parser.detect_xlm_macros())
        code = str(parser.get_vba_code_all_modules()) if vba else ""
    finally:
        parser.close()
    raptor = mraptor.MacroRaptor(code)
    raptor.scan()
    where = "" if data is None else f"{source}: "
    if vba:
        _add(found, "office_macros", f"{where}a VBA project")
    if xlm:
        _add(found, "office_macros", f"{where}Excel 4 (XLM) macros")
    if raptor.suspicious:
        matches = ", ".join(str(match) for match in raptor.matches)
        _add(found, "office_macros_suspicious", f"{where}{_short(matches)}")


def _inspect_sylk(path: str, found: Found) -> None:
    _macro_findings(path, None, found)
    with open(path, "rb") as file:
        for line in iter(lambda: file.readline(MAX_SYLK_LINE), b""):
            if not line.startswith(b"C;"):
                continue
            for field in line.rstrip(b"\r\n").split(b";")[1:]:
                formula = field[1:].decode("latin-1")
                if field.startswith(b"E") and _is_dde_formula(formula):
                    _add(found, "office_dde", f"DDE formula {_short(formula)}")


def _inspect_rtf(path: str, found: Found) -> None:
    """Embedded objects and DDE fields; pictures (``\\pict``) are not objects."""
    from filegate.inspect._oletools import rtfobj  # noqa: PLC0415

    with open(path, "rb") as file:
        parser = rtfobj.RtfObjParser(file.read())
    parser.parse()
    for rtf_object in parser.objects:
        kind = "an OLE package" if rtf_object.is_package else "an OLE object"
        name = _short(str(rtf_object.class_name or b"", "latin-1"), 40) if rtf_object.is_ole else ""
        shown = f"{kind} {name}".strip()
        _add(found, "office_embedded_object", f"{shown} at byte {rtf_object.start}")
    _dde_fields(path, found)


def _is_dde_formula(formula: str) -> bool:
    return bool(_DDE_FORMULA.search(_QUOTED.sub("", formula)))


# --- OOXML and ODF packages --------------------------------------------------------------------


def _inspect_package(path: str, limits: Limits, found: Found) -> None:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_archive_entries:
            _add(found, "office_too_complex", f"{len(infos)} parts")
            return
        declared = content_types(archive)
        if declared is None and odf_type(archive) is None:
            _add(found, "office_invalid", "a zip without [Content_Types].xml or ODF mimetype")
            return
        if declared is not None:
            _declared_macro_parts(infos, *declared, found)
        encrypted = _odf_encrypted_parts(archive, found) if declared is None else frozenset()
        budget = limits.max_archive_total
        for info in infos:
            budget -= info.file_size
            if budget < 0:
                _add(found, "office_too_complex", "the parts inflate past the archive limit")
                return
            _inspect_part(archive, info, encrypted, found)


def _declared_macro_parts(
    infos: list[zipfile.ZipInfo], defaults: dict[str, str], overrides: dict[str, str], found: Found
) -> None:
    """A part whose declared content type is a macro type. A declaration alone is not a macro:
    only a part that exists counts (its Override, else the Default for its extension)."""
    for info in infos:
        content_type = part_type(info.filename.lower(), defaults, overrides)
        if content_type in _MACRO_TYPES:
            _add(found, "office_macros", f"{info.filename}: a part declared {content_type}")


def _inspect_part(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, encrypted: frozenset[str], found: Found
) -> None:
    name = info.filename
    if _is_macro_part(name):
        _add(found, "office_macros", f"{name}: a macro part")
    if info.is_dir() or name in encrypted:
        return  # ODF ciphertext: reported once by _odf_encrypted_parts
    if info.flag_bits & 0x1:
        _add(found, "office_encrypted", f"{name} is encrypted inside the zip")
        return
    if info.file_size > MAX_PART_BYTES:
        _add(found, "office_too_complex", f"{name} inflates to {info.file_size:,} bytes")
        return
    with archive.open(info) as stream:
        head = stream.read(64)
    named_xml = name.lower().endswith((".xml", ".rels", ".vml"))
    if not head.strip() and _is_blank(archive, info):
        return  # LibreOffice writes Configurations2/accelerator/current.xml empty in every file
    if head.startswith(_APPLE_DOUBLE):
        return  # macOS's Finder adds __MACOSX/._name resource forks when it zips a package
    if head.startswith(OLE_MAGIC):
        _macro_findings(name, archive.read(info), found)
    elif named_xml or _sniffs_like_xml(head):
        with archive.open(info) as stream:
            _scan_xml(name, stream, found, must_parse=named_xml)


def _is_blank(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """True for a part of nothing but whitespace: no content, so nothing malformed either."""
    with archive.open(info) as stream:
        while chunk := stream.read(64 * 1024):
            if chunk.strip():
                return False
    return True


def _is_macro_part(name: str) -> bool:
    lower = name.lower()
    base = posixpath.basename(lower)
    if base == "vbaproject.bin" or lower.startswith("xl/macrosheets/"):
        return True
    in_odf_library = name.startswith(("Basic/", "Scripts/"))
    return in_odf_library and bool(base) and base not in _ODF_LIBRARY_INDEXES


def _sniffs_like_xml(head: bytes) -> bool:
    """XML under another name: [Content_Types].xml can declare ``word/x.dat`` an XML part."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return text.startswith((b"<?xml", b"<!")) or head.startswith(
        (b"\xff\xfe<\x00", b"\xfe\xff\x00<")
    )


def _odf_encrypted_parts(archive: zipfile.ZipFile, found: Found) -> frozenset[str]:
    """Parts the manifest says are encrypted; reports office_encrypted if there are any."""
    try:
        manifest = archive.getinfo("META-INF/manifest.xml")
    except KeyError:
        return frozenset()
    if manifest.file_size > MAX_PART_BYTES:
        return frozenset()  # the part scan reports it
    try:
        root = fromstring(archive.read(manifest), forbid_dtd=True)
    except (DefusedXmlException, ParseError):
        return frozenset()  # the part scan reports it
    encrypted = frozenset(
        _attribute(entry, "full-path")
        for entry in root.iter()
        if _local(entry.tag) == "file-entry"
        and any(_local(child.tag) == "encryption-data" for child in entry)
    )
    if encrypted:
        _add(found, "office_encrypted", f"{len(encrypted)} parts encrypted with an ODF password")
    return encrypted


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _attribute(element: Element, local: str) -> str:
    """An attribute by local name, whatever its namespace prefix."""
    for key, value in element.attrib.items():
        if _local(key) == local:
            return value
    return ""


# --- streaming XML ------------------------------------------------------------------------------


def _elements(stream: IO[bytes]) -> Iterator[Element]:
    """Each element when it ends, children included, then dropped: memory stays at one path."""
    path: list[Element] = []
    for event, element in iterparse(stream, events=("start", "end"), forbid_dtd=True):
        if event == "start":
            path.append(element)
            continue
        path.pop()
        yield element
        if path:
            path[-1].remove(element)


def _scan_xml(name: str, stream: IO[bytes], found: Found, *, must_parse: bool) -> None:
    """Findings in one XML part. A part found by sniffing may be binary that merely starts
    like XML; an application would not parse it either, so its parse errors are not findings."""
    fields = _FieldInstructions()
    try:
        for element in _elements(stream):
            for code, detail in _element_findings(element, fields):
                _add(found, code, f"{name}: {detail}")
    except DefusedXmlException as exc:
        _add(found, "xml_dtd", f"{name}: {_short(str(exc))}")
    except ParseError as exc:
        if must_parse:
            _add(found, "office_invalid", f"{name}: not well-formed XML ({_short(str(exc))})")


class _FieldInstructions:
    """Word complex fields: the instruction may be split over runs ("DD" + "EAUTO") and
    fields nest, so text is collected per open field until its separator or end."""

    def __init__(self) -> None:
        self._open: list[list[str] | None] = []

    def char(self, kind: str) -> str | None:
        """A fldChar; returns the instruction it completes, if any."""
        if kind == "begin":
            self._open.append([])
            return None
        if not self._open or kind not in ("separate", "end"):
            return None
        parts = self._open.pop() if kind == "end" else self._open[-1]
        if kind == "separate":
            self._open[-1] = None  # the rest, up to "end", is the field's result
        return "".join(parts) if parts is not None else None

    def text(self, text: str) -> str | None:
        """An instrText; returns it when it belongs to no open field (malformed, checked anyway)."""
        if self._open and self._open[-1] is not None:
            self._open[-1].append(text)
            return None
        return text


def _element_findings(element: Element, fields: _FieldInstructions) -> Iterator[tuple[str, str]]:
    namespace, _, local = element.tag.rpartition("}")
    namespace = namespace.removeprefix("{")
    if namespace == _REL and local == "Relationship":
        yield from _relationship_findings(element)
    elif namespace in _WORD:
        yield from _word_findings(element, local, fields)
    elif namespace in _SHEET:
        yield from _sheet_findings(element, local)
    elif namespace.startswith(_ODF):
        yield from _odf_findings(element, namespace, local)
    if _SCRIPT_URL.match(element.get(_XLINK_HREF, "")):
        yield "office_macros", f"calls a script: {_short(element.get(_XLINK_HREF, ''))}"


def _relationship_findings(element: Element) -> Iterator[tuple[str, str]]:
    if element.get("TargetMode", "").strip().lower() != "external":
        return
    kind = element.get("Type", "").rpartition("/")[2]
    target = _short(element.get("Target", ""))
    code = "office_link" if kind == "hyperlink" else "office_external_relationship"
    yield code, f"external {_short(kind)} relationship to {target}"


def _word_findings(
    element: Element, local: str, fields: _FieldInstructions
) -> Iterator[tuple[str, str]]:
    namespace = element.tag.rpartition("}")[0].removeprefix("{")
    instruction = None
    if local == "fldSimple":
        instruction = element.get(f"{{{namespace}}}instr", "")
    elif local == "fldChar":
        instruction = fields.char(element.get(f"{{{namespace}}}fldCharType", ""))
    elif local == "instrText":
        instruction = fields.text(element.text or "")
    if instruction and _DDE_FIELD.match(instruction):
        yield "office_dde", f"DDE field {_short(instruction)}"


def _sheet_findings(element: Element, local: str) -> Iterator[tuple[str, str]]:
    if local == "ddeLink":
        link = f"{element.get('ddeService', '')}|{element.get('ddeTopic', '')}"
        yield "office_dde", f"DDE link {_short(link)}"
    elif local == "f" and _is_dde_formula(element.text or ""):
        yield "office_dde", f"DDE formula {_short(element.text or '')}"


def _odf_findings(element: Element, namespace: str, local: str) -> Iterator[tuple[str, str]]:
    if namespace == _ODF_SCRIPT and local == "event-listener":
        script = element.get(_XLINK_HREF) or _attribute(element, "macro-name")
        yield "office_macros", f"an event calls a script ({_short(script)})"
    elif local in _ODF_DDE_ELEMENTS:
        yield "office_dde", f"a DDE connection ({local})"
    formula = element.get(_ODF_FORMULA, "")
    if formula and _ODF_DDE_FUNCTION.search(_QUOTED.sub("", formula)):
        yield "office_dde", f"DDE formula {_short(formula)}"
