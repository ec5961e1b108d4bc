"""PDF inspection on documents built here with pikepdf or by hand, never committed as blobs."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, String

from filegate.inspect import pdf as pdf_module
from filegate.inspect.base import InspectorReport, Limits, Sample
from filegate.inspect.pdf import CODES, INFORMATIONAL_CODES, inspect_pdf

# --- building samples ---------------------------------------------------------------------


def document(pages: int = 3) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(200, 200))
    return pdf


def save(pdf: pikepdf.Pdf, **options: Any) -> bytes:
    buffer = io.BytesIO()
    pdf.save(buffer, **options)
    return buffer.getvalue()


def annotate(pdf: pikepdf.Pdf, annotation: Dictionary, page: int = 0) -> None:
    annotation.Type = Name.Annot
    annotation.Rect = Array([10, 10, 60, 60])
    obj = pdf.pages[page].obj
    annots = obj.get("/Annots") or pdf.make_indirect(Array())
    annots.append(pdf.make_indirect(annotation))
    obj.Annots = annots


def link(pdf: pikepdf.Pdf, action: Dictionary, page: int = 0) -> None:
    annotate(pdf, Dictionary(Subtype=Name.Link, A=action), page)


def script(pdf: pikepdf.Pdf, code: str = "app.alert(1)") -> pikepdf.Object:
    return pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String(code)))


def uri(address: str) -> Dictionary:
    return Dictionary(S=Name.URI, URI=String(address))


def benign() -> bytes:
    """Three pages, web links on each, opening at page 2 with /Fit: what real PDFs do."""
    pdf = document()
    for page in range(3):
        link(pdf, uri(f"https://example.com/{page}"), page)
    pdf.Root.OpenAction = Array([pdf.pages[1].obj, Name.Fit])
    return save(pdf)


def goto_dictionary() -> bytes:
    pdf = document()
    pdf.Root.OpenAction = Dictionary(S=Name.GoTo, D=Array([pdf.pages[2].obj, Name.Fit]))
    return save(pdf)


def goto_then_script() -> bytes:
    pdf = document()
    pdf.Root.OpenAction = Dictionary(
        S=Name.GoTo, D=Array([pdf.pages[0].obj, Name.Fit]), Next=script(pdf)
    )
    return save(pdf)


def open_action_javascript() -> bytes:
    pdf = document()
    pdf.Root.OpenAction = script(pdf)
    return save(pdf)


def additional_actions() -> bytes:
    pdf = document()
    pdf.pages[0].obj.AA = Dictionary(O=Dictionary(S=Name.Named, N=Name.NextPage))
    return save(pdf)


def launch() -> bytes:
    pdf = document()
    link(pdf, Dictionary(S=Name.Launch, F=String("calc.exe")))
    return save(pdf)


def embedded_file() -> bytes:
    pdf = document(1)
    pdf.attachments["notes.txt"] = pikepdf.AttachedFileSpec(pdf, b"just some notes\n")
    return save(pdf)


def rich_media() -> bytes:
    pdf = document(1)
    annotate(pdf, Dictionary(Subtype=Name.RichMedia, RichMediaContent=Dictionary()))
    return save(pdf)


def xfa() -> bytes:
    pdf = document(1)
    form = pdf.make_stream(b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"/>')
    pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=form)
    return save(pdf)


def submit_form() -> bytes:
    pdf = document(1)
    target = Dictionary(FS=Name.URL, F=String("https://collector.example/"))
    link(pdf, Dictionary(S=Name.SubmitForm, F=target))
    return save(pdf)


def document_javascript(pdf: pikepdf.Pdf) -> None:
    """Document-level JavaScript: the /Names tree runs it on open, no /OpenAction needed."""
    tree = Dictionary(Names=Array([String("init"), script(pdf)]))
    pdf.Root.Names = Dictionary(JavaScript=pdf.make_indirect(tree))


def javascript_in_object_stream() -> bytes:
    pdf = document()
    document_javascript(pdf)
    data = save(pdf, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    # The catalog, the name tree and the action sit compressed inside an object stream: a
    # scanner of raw bytes sees no /JavaScript at all.
    assert b"/ObjStm" in data
    assert b"/JavaScript" not in data
    assert b"/Names" not in data
    return data


def raw_pdf(*bodies: bytes) -> bytes:
    """A PDF written by hand: object ``n`` is ``bodies[n - 1]``, catalog first."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(bodies, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(bodies) + 1,
        xref,
    )
    return bytes(out)


def hex_escaped_names() -> bytes:
    data = raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /Open#41ction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        b"<< /S /J#61va#53cript /J#53 (app.alert\\(1\\)) >>",
    )
    for plain in (b"/JS", b"/JavaScript", b"/OpenAction"):
        assert plain not in data
    return data


def minimal() -> bytes:
    return raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    )


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def zip_inside_a_stream() -> bytes:
    pdf = document(1)
    pdf.Root.Blob = pdf.make_stream(zip_bytes())
    return save(pdf, compress_streams=False)


def encrypted() -> bytes:
    return save(document(1), encryption=pikepdf.Encryption(user="secret", owner="owner"))


def owner_password_only_with_script() -> bytes:
    pdf = document(1)
    pdf.Root.OpenAction = script(pdf)
    return save(pdf, encryption=pikepdf.Encryption(user="", owner="owner"))


def kitchen_sink() -> pikepdf.Pdf:
    """Every kind of active content at once, plus links and an /OpenAction that only moves."""
    pdf = document()
    document_javascript(pdf)
    link(pdf, uri("https://example.com/"), 0)
    link(pdf, script(pdf, "this.exportDataObject({cName: 'x'})"), 1)
    link(pdf, Dictionary(S=Name.Launch, F=String("cmd.exe")), 1)
    link(pdf, Dictionary(S=Name.SubmitForm, F=String("https://collector.example/")), 2)
    annotate(pdf, Dictionary(Subtype=Name.RichMedia, RichMediaContent=Dictionary()), 2)
    pdf.pages[2].obj.AA = Dictionary(O=script(pdf, "app.launchURL('x')"))
    pdf.attachments["dropper.txt"] = pikepdf.AttachedFileSpec(pdf, b"harmless stand-in\n")
    pdf.Root.AcroForm = Dictionary(Fields=Array(), XFA=pdf.make_stream(b"<xdp/>"))
    pdf.Root.OpenAction = Dictionary(S=Name.GoTo, D=Array([pdf.pages[1].obj, Name.Fit]))
    return pdf


ALL_ACTIVE = {
    "pdf_javascript",
    "pdf_auto_action",
    "pdf_launch",
    "pdf_embedded_file",
    "pdf_rich_media",
    "pdf_xfa",
    "pdf_submit_form",
    "pdf_link",
}

# --- running the inspector --------------------------------------------------------------------


def inspect_bytes(
    tmp_path: Path, data: bytes, *, sanitize: bool = False, limits: Limits | None = None
) -> InspectorReport:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "upload.pdf"
    path.write_bytes(data)
    sample = Sample(
        path=str(path),
        size=len(data),
        detected_type="application/pdf",
        extension="pdf",
        sanitized_path=str(tmp_path / "sanitized.pdf") if sanitize else None,
    )
    outcome = inspect_pdf(sample, limits or Limits())
    assert {f.code for f in outcome.findings} <= CODES.keys()
    assert len({f.code for f in outcome.findings}) == len(outcome.findings)
    return outcome


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


CASES = [
    pytest.param(benign, {"pdf_link"}, id="benign-links-and-fit-destination"),
    pytest.param(goto_dictionary, set(), id="open-action-goto-page"),
    pytest.param(goto_then_script, {"pdf_auto_action", "pdf_javascript"}, id="goto-with-next"),
    pytest.param(minimal, set(), id="hand-written-minimal"),
    pytest.param(
        open_action_javascript, {"pdf_auto_action", "pdf_javascript"}, id="open-action-js"
    ),
    pytest.param(additional_actions, {"pdf_auto_action"}, id="additional-actions"),
    pytest.param(launch, {"pdf_launch"}, id="launch"),
    pytest.param(embedded_file, {"pdf_embedded_file"}, id="embedded-file"),
    pytest.param(rich_media, {"pdf_rich_media"}, id="rich-media"),
    pytest.param(xfa, {"pdf_xfa"}, id="xfa"),
    pytest.param(submit_form, {"pdf_submit_form"}, id="submit-form"),
    pytest.param(hex_escaped_names, {"pdf_auto_action", "pdf_javascript"}, id="hex-escaped-names"),
    pytest.param(javascript_in_object_stream, {"pdf_javascript"}, id="js-in-object-stream"),
    pytest.param(encrypted, {"pdf_encrypted"}, id="encrypted-user-password"),
    pytest.param(
        owner_password_only_with_script,
        {"pdf_encrypted", "pdf_auto_action", "pdf_javascript"},
        id="encrypted-owner-only-still-walked",
    ),
    pytest.param(lambda: minimal() + b"\r\n\n", set(), id="newlines-after-eof"),
    pytest.param(lambda: minimal() + b"<html>hi</html>", {"pdf_trailing_data"}, id="trailing"),
    # Whitespace or NUL padding holds nothing (pypdf's issue-177 file ends in 20 KB of NUL).
    pytest.param(lambda: minimal() + b" " * 4096, set(), id="trailing-padding"),
    pytest.param(lambda: minimal() + bytes(20480), set(), id="trailing-nul-padding"),
    pytest.param(
        lambda: minimal() + bytes(4096) + b"PK", {"pdf_trailing_data"}, id="data-after-padding"
    ),
    pytest.param(
        lambda: minimal() + zip_bytes(), {"pdf_trailing_data", "pdf_polyglot"}, id="appended-zip"
    ),
    pytest.param(zip_inside_a_stream, {"pdf_polyglot"}, id="zip-inside-a-stream"),
    pytest.param(lambda: b"GIF89a;" * 20 + minimal(), {"pdf_header_offset"}, id="header-offset"),
    pytest.param(lambda: b"x" * 2000 + minimal(), {"pdf_invalid"}, id="header-too-late"),
    pytest.param(lambda: minimal()[:150], {"pdf_invalid"}, id="truncated"),
    pytest.param(lambda: b"%PDF-1.7\n" + b"\x00\xff garbage " * 50, {"pdf_invalid"}, id="garbage"),
    pytest.param(lambda: b"", {"pdf_invalid"}, id="empty"),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_findings(tmp_path: Path, build: Callable[[], bytes], expected: set[str]) -> None:
    assert codes(inspect_bytes(tmp_path, build())) == expected


def test_links_are_reported_whatever_the_limits_say(tmp_path: Path) -> None:
    # The pipeline decides with allow_pdf_links; the inspector only observes.
    forbidding = Limits(allow_pdf_links=False)
    assert codes(inspect_bytes(tmp_path, benign(), limits=forbidding)) == {"pdf_link"}
    assert sorted(INFORMATIONAL_CODES) == ["pdf_link"]


def test_findings_say_where(tmp_path: Path) -> None:
    messages = {f.code: f.message for f in inspect_bytes(tmp_path, hex_escaped_names()).findings}
    assert messages["pdf_javascript"] in {"/JS in object 4 0", "/JavaScript in object 4 0"}
    assert messages["pdf_auto_action"] == "/OpenAction in object 1 0"


def test_object_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "MAX_OBJECTS", 5)
    assert codes(inspect_bytes(tmp_path, benign())) == {"pdf_too_complex"}
    monkeypatch.setattr(pdf_module, "MAX_OBJECTS", 12)  # fewer roots than that, more nodes
    assert codes(inspect_bytes(tmp_path, minimal())) == set()
    assert codes(inspect_bytes(tmp_path, benign())) == {"pdf_too_complex"}


def test_messages_do_not_leak_the_storage_path(tmp_path: Path) -> None:
    outcome = inspect_bytes(tmp_path, minimal()[:150])
    assert all(str(tmp_path) not in f.message for f in outcome.findings)


# --- sanitising -------------------------------------------------------------------------------


def test_sanitize_strips_active_content_and_keeps_pages_and_links(tmp_path: Path) -> None:
    source = kitchen_sink()
    original = inspect_bytes(tmp_path, save(source), sanitize=True)
    assert codes(original) == ALL_ACTIVE
    assert original.sanitized
    assert original.sanitized_type == "application/pdf"

    cleaned = (tmp_path / "sanitized.pdf").read_bytes()
    assert codes(inspect_bytes(tmp_path / "again", cleaned)) == {"pdf_link"}
    with pikepdf.open(io.BytesIO(cleaned)) as pdf:
        assert len(pdf.pages) == 3
        assert str(pdf.Root.OpenAction.S) == "/GoTo"  # opening at a page is kept
        assert not pdf.attachments


def test_sanitize_removes_script_hidden_in_object_stream(tmp_path: Path) -> None:
    outcome = inspect_bytes(tmp_path, javascript_in_object_stream(), sanitize=True)
    assert codes(outcome) == {"pdf_javascript"}
    assert outcome.sanitized
    cleaned = (tmp_path / "sanitized.pdf").read_bytes()
    assert codes(inspect_bytes(tmp_path / "again", cleaned)) == set()


def test_sanitize_drops_what_follows_the_document(tmp_path: Path) -> None:
    outcome = inspect_bytes(tmp_path, minimal() + zip_bytes(), sanitize=True)
    assert codes(outcome) == {"pdf_trailing_data", "pdf_polyglot"}
    cleaned = (tmp_path / "sanitized.pdf").read_bytes()
    assert codes(inspect_bytes(tmp_path / "again", cleaned)) == set()


def test_sanitize_removes_owner_password_encryption(tmp_path: Path) -> None:
    outcome = inspect_bytes(tmp_path, owner_password_only_with_script(), sanitize=True)
    assert outcome.sanitized
    cleaned = (tmp_path / "sanitized.pdf").read_bytes()
    assert codes(inspect_bytes(tmp_path / "again", cleaned)) == set()


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(encrypted, id="password-needed"),
        pytest.param(lambda: b"%PDF-1.7\n" + b"junk " * 100, id="unparseable"),
    ],
)
def test_no_sanitized_copy_when_the_document_cannot_be_read(
    tmp_path: Path, build: Callable[[], bytes]
) -> None:
    outcome = inspect_bytes(tmp_path, build(), sanitize=True)
    assert not outcome.sanitized
    assert not (tmp_path / "sanitized.pdf").exists()


def test_no_sanitized_copy_past_the_object_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_module, "MAX_OBJECTS", 5)
    outcome = inspect_bytes(tmp_path, benign(), sanitize=True)
    assert codes(outcome) == {"pdf_too_complex"}
    assert not outcome.sanitized


def test_a_failed_write_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "upload.pdf"
    path.write_bytes(open_action_javascript())
    target = tmp_path / "missing-directory" / "sanitized.pdf"
    sample = Sample(str(path), path.stat().st_size, "application/pdf", "pdf", str(target))
    outcome = inspect_pdf(sample, Limits())
    assert codes(outcome) == {"pdf_auto_action", "pdf_javascript", "pdf_sanitize_failed"}
    assert not outcome.sanitized
    assert not target.exists()
    assert all(str(tmp_path) not in finding.message for finding in outcome.findings)


# --- hostile input never raises ---------------------------------------------------------------


def test_damaged_documents_never_raise(tmp_path: Path) -> None:
    data = save(kitchen_sink(), object_stream_mode=pikepdf.ObjectStreamMode.generate)
    variants = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 15))]
    for index in range(9, len(data), max(1, len(data) // 25)):
        flipped = bytearray(data)
        flipped[index] ^= 0xFF
        variants.append(bytes(flipped))
    for number, variant in enumerate(variants):
        outcome = inspect_bytes(tmp_path / str(number), variant, sanitize=True)
        assert isinstance(outcome, InspectorReport)


def test_a_crash_in_our_own_walk_is_ours_not_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: object) -> object:
        raise AttributeError("'int' object has no attribute 'objgen'")

    monkeypatch.setattr(pdf_module, "_active_content", broken)
    path = tmp_path / "upload"
    path.write_bytes(minimal())
    outcome = inspect_pdf(
        Sample(str(path), path.stat().st_size, "application/pdf", "pdf"), Limits()
    )
    assert [(f.code, f.message) for f in outcome.findings] == [
        ("inspection_failed", "the PDF inspector crashed (AttributeError): a bug")
    ]
    assert "the PDF inspector crashed" in caplog.text
    assert "Traceback" in caplog.text or caplog.records[-1].exc_info is not None
