"""SVG inspection: one table row per attack, then what the sanitised copy keeps."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from filegate.inspect import svg
from filegate.inspect.base import InspectorReport, Limits, Sample
from filegate.inspect.svg import CODES, inspect_svg

ALLOW = Limits(allow_svg=True)
NS = 'xmlns="http://www.w3.org/2000/svg"'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'


def doc(body: str, attributes: str = "") -> bytes:
    return f'<svg {NS} {XLINK} width="10" height="10" {attributes}>{body}</svg>'.encode()


CLEAN = doc('<rect width="5" height="5" fill="red"/><circle cx="5" cy="5" r="2"/>')
XXE = b'<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n' + doc(
    "<text>&x;</text>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY lol "lol">\n'
    + b"".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b"]>\n"
    + doc("<text>&lol9;</text>")
)

ACTIVE = {"svg_active_content"}
EXTERNAL = {"svg_external_reference"}
UNSANITISABLE = {"svg_sanitize_failed"}

CASES = [
    # (id, document, exact codes)
    ("clean", CLEAN, set()),
    # svg-hush writes a prefixed SVG namespace back without it: that copy is no SVG, so unused.
    (
        "prefixed-svg-namespace",
        b'<s:svg xmlns:s="http://www.w3.org/2000/svg"><s:g/></s:svg>',
        UNSANITISABLE,
    ),
    ("same-document-use", doc('<use href="#a"/><use xlink:href="#b"/>'), set()),
    ("relative-image", doc('<image href="pictures/a.png"/>'), set()),
    ("inline-png", doc('<image href="data:image/png;base64,iVBORw0KGgo="/>'), set()),
    ("fragment-fill", doc('<rect fill="url(#gradient)"/>'), set()),
    ("link-to-another-site", doc('<a href="https://example.com/"><text>x</text></a>'), set()),
    ("script", doc("<script>alert(document.domain)</script>"), ACTIVE),
    ("script-in-other-case-namespace", doc('<x:script xmlns:x="urn:x">1</x:script>'), ACTIVE),
    ("onload", doc("", 'onload="alert(1)"'), ACTIVE),
    ("onclick-on-child", doc('<rect onclick="alert(1)"/>'), ACTIVE),
    ("javascript-href", doc('<a href="javascript:alert(1)"><text>x</text></a>'), ACTIVE),
    (
        "javascript-xlink-href",
        doc('<a xlink:href="javascript:alert(1)"><text>x</text></a>'),
        ACTIVE,
    ),
    (
        "javascript-split-by-tab",
        doc('<a href="java&#9;script:alert(1)"><text>x</text></a>'),
        ACTIVE,
    ),
    ("javascript-entity-encoded", doc('<a href="&#106;avascript:alert(1)"/>'), ACTIVE),
    ("data-text-html", doc('<a href="data:text/html,&lt;script&gt;x&lt;/script&gt;"/>'), ACTIVE),
    (
        "animate-to-javascript",
        doc('<a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a>'),
        ACTIVE | UNSANITISABLE,  # svg-hush keeps to="javascript:..."; the re-check refuses it
    ),
    ("animate-event-handler", doc('<set attributeName="onmouseover" to="alert(1)"/>'), ACTIVE),
    (
        "foreign-object",
        doc('<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>'),
        ACTIVE,
    ),
    ("xhtml-iframe", doc('<iframe xmlns="http://www.w3.org/1999/xhtml" src="/x"/>'), ACTIVE),
    (
        "css-expression",
        doc('<rect style="width: expression(alert(1))"/>'),
        ACTIVE | UNSANITISABLE,  # svg-hush keeps IE's expression(); the re-check refuses it
    ),
    ("css-javascript-url", doc("<style>rect { fill: url(javascript:alert(1)) }</style>"), ACTIVE),
    ("external-image", doc('<image href="http://attacker.example/track.png"/>'), EXTERNAL),
    ("external-image-xlink", doc('<image xlink:href="https://attacker.example/a.png"/>'), EXTERNAL),
    ("scheme-relative-use", doc('<use href="//attacker.example/sprite.svg#a"/>'), EXTERNAL),
    ("backslash-relative", doc('<image href="\\\\attacker.example\\a.png"/>'), EXTERNAL),
    ("file-url", doc('<image href="file:///etc/passwd"/>'), EXTERNAL),
    ("external-use", doc('<use href="http://attacker.example/sprite.svg#a"/>'), EXTERNAL),
    ("css-import", doc('<style>@import url("https://attacker.example/x.css");</style>'), EXTERNAL),
    ("css-url", doc('<rect style="fill: url(https://attacker.example/f.svg#f)"/>'), EXTERNAL),
    ("presentation-url", doc('<rect filter="url(http://attacker.example/f#f)"/>'), EXTERNAL),
    (
        "xml-stylesheet",
        b'<?xml-stylesheet type="text/xsl" href="https://attacker.example/x.xsl"?>' + CLEAN,
        EXTERNAL,
    ),
    (
        "xinclude",
        doc('<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="x"/>'),
        EXTERNAL,
    ),
    (
        "script-and-external",
        doc('<script>1</script><image href="http://attacker.example/a.png"/>'),
        ACTIVE | EXTERNAL,
    ),
    ("xxe", XXE, {"xml_dtd"}),
    ("billion-laughs", BILLION_LAUGHS, {"xml_dtd"}),
    (
        "harmless-doctype",
        b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x">' + CLEAN,
        {"xml_dtd"},
    ),
    ("not-xml", b"<svg", {"svg_invalid"}),
    ("html-root", b"<html><body><svg/></body></html>", {"svg_invalid"}),
    ("svg-without-namespace", b"<svg><rect/></svg>", {"svg_invalid"}),
    ("empty", b"", {"svg_invalid"}),
]


def run(
    tmp_path: Path, data: bytes, limits: Limits = ALLOW, *, sanitize: bool = True
) -> InspectorReport:
    source = tmp_path / "upload.svg"
    source.write_bytes(data)
    sample = Sample(
        path=str(source),
        size=len(data),
        detected_type="image/svg+xml",
        extension="svg",
        sanitized_path=str(tmp_path / "clean.svg") if sanitize else None,
    )
    return inspect_svg(sample, limits)


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_findings(tmp_path: Path, data: bytes, expected: set[str]) -> None:
    outcome = run(tmp_path, data)
    assert codes(outcome) == expected
    assert codes(outcome) <= CODES.keys()


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_copy_is_clean(tmp_path: Path, data: bytes, expected: set[str]) -> None:
    """A document that parsed gets a copy, and the copy has nothing left to find."""
    outcome = run(tmp_path, data)
    if expected & {"xml_dtd", "svg_invalid", "svg_sanitize_failed"}:
        assert outcome == InspectorReport(outcome.findings)
        assert not (tmp_path / "clean.svg").exists()
        return
    assert (outcome.sanitized, outcome.sanitized_type) == (True, "image/svg+xml")
    copy = (tmp_path / "clean.svg").read_bytes()
    assert run(tmp_path, copy, sanitize=False) == InspectorReport()
    assert b"<script" not in copy


def test_not_allowed_by_default(tmp_path: Path) -> None:
    outcome = run(tmp_path, XXE, Limits())
    assert codes(outcome) == {"svg_not_allowed"}
    assert not outcome.sanitized


def test_clean_svg_keeps_its_drawing(tmp_path: Path) -> None:
    run(tmp_path, CLEAN)
    root = ET.fromstring((tmp_path / "clean.svg").read_bytes())
    shapes = [element.tag.rpartition("}")[2] for element in root]
    assert shapes == ["rect", "circle"]


@pytest.mark.parametrize("data", [XXE, BILLION_LAUGHS], ids=["xxe", "billion-laughs"])
def test_entities_are_never_expanded(tmp_path: Path, data: bytes) -> None:
    started = time.perf_counter()
    outcome = run(tmp_path, data)
    assert time.perf_counter() - started < 1.0  # measured: about a millisecond
    assert [f.message for f in outcome.findings] == [
        "the document has a DOCTYPE, which is never processed"
    ]


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svg, "MAX_SVG_BYTES", len(CLEAN) - 1)
    assert codes(run(tmp_path, CLEAN)) == {"svg_too_large"}


def test_no_copy_unless_asked(tmp_path: Path) -> None:
    assert run(tmp_path, CLEAN, sanitize=False) == InspectorReport()


def test_copy_that_cannot_be_written_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "upload.svg").write_bytes(CLEAN)
    sample = Sample(
        str(tmp_path / "upload.svg"), len(CLEAN), "image/svg+xml", "svg", str(tmp_path / "x" / "y")
    )
    outcome = inspect_svg(sample, ALLOW)
    assert codes(outcome) == {"svg_sanitize_failed"}
    assert not outcome.sanitized


def test_too_deep_to_filter(tmp_path: Path) -> None:
    outcome = run(tmp_path, doc("<g>" * 64 + "</g>" * 64))  # 65 levels with the root
    assert [f.message for f in outcome.findings] == [
        "65 elements nested 65 deep; at most 200000 elements and 64 levels"
    ]
    assert not outcome.sanitized


def test_too_many_elements_to_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svg, "MAX_SVG_ELEMENTS", 100)
    outcome = run(tmp_path, doc("<g/>" * 100))  # 101 with the root
    assert codes(outcome) == {"svg_too_large"}
    assert not outcome.sanitized


def test_deepest_allowed_is_filtered(tmp_path: Path) -> None:
    assert run(tmp_path, doc("<g>" * 63 + "</g>" * 63)).sanitized
