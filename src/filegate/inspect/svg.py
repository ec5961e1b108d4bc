"""SVG: a document that can script, not just a picture.

Parsed with defusedxml and no DTD at all (so no XXE, no entity expansion); active content and
external references are reported; the sanitised copy comes from svg-hush (Cloudflare's
allowlist filter, through the ``py-svg-hush`` bindings) and is checked again before use.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from filegate.domain import Finding, SanitizeMode
from filegate.inspect.base import InspectorReport, Limits, Sample

CODES: dict[str, str] = {
    "svg_not_allowed": "The profile does not accept SVG, which can carry script.",
    "svg_too_large": "The SVG has more bytes, elements or nesting than an SVG may have.",
    "xml_dtd": "The XML has a DOCTYPE (the carrier of XXE and entity-expansion attacks).",
    "svg_invalid": "The content is not a well-formed SVG document.",
    "svg_active_content": "The SVG has script, event handlers, script URLs or embedded HTML.",
    "svg_external_reference": "The SVG loads something from another origin.",
    "svg_sanitize_failed": "No sanitised copy could be made that passes inspection again.",
}

# Hand-drawn and exported SVGs are kilobytes to a few megabytes; a parsed tree costs roughly
# ten times the file in memory.
MAX_SVG_BYTES = 8 * 1024 * 1024
# Detailed maps and CAD exports run to tens of thousands of elements; each costs a few
# microseconds to check, and twice that to filter.
MAX_SVG_ELEMENTS = 200_000
# Editors' exports nest a few levels deep. svg-hush indents its output two spaces per level,
# so depth multiplies the size of the copy (20,000 levels of <g> turn 140 KB into 800 MB).
MAX_SVG_DEPTH = 64

_SVG_NS = "http://www.w3.org/2000/svg"
_XHTML_NS = "http://www.w3.org/1999/xhtml"
_XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
# Elements that run script or embed a document: foreignObject hosts arbitrary HTML, and
# handler/listener are SVG Tiny 1.2's script hooks.
_ACTIVE_ELEMENTS = frozenset(
    {"script", "foreignObject", "handler", "listener", "iframe", "embed", "object"}
)
# URLs that run code, or load a document that could (browsers strip tabs and newlines first).
_SCRIPT_URL = re.compile(
    r"(?:^|[;,])(?:javascript:|vbscript:|data:(?:text/html|application/xhtml|image/svg))"
)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]*)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import", re.IGNORECASE)
# Legacy CSS that runs script: IE's expression() and behavior, Firefox's XBL binding.
_CSS_SCRIPT = re.compile(r"expression\s*\(|behavior\s*:|-moz-binding", re.IGNORECASE)
# Raster images may stay inline in the copy; anything else as a data: URL is dropped.
_KEPT_DATA_TYPES = {"image": ["png", "jpeg", "gif", "webp"]}

_ACTIVE = "svg_active_content"
_EXTERNAL = "svg_external_reference"


class _Builder(ET.TreeBuilder):
    """A tree builder that also keeps processing instructions (ElementTree drops them)."""

    def __init__(self) -> None:
        super().__init__()
        self.instructions: list[str] = []

    def pi(self, target: str, text: str | None = None, /) -> ET.Element:
        self.instructions.append(target)
        return super().pi(target, text)


def inspect_svg(sample: Sample, limits: Limits) -> InspectorReport:
    """Report active content and external references; write a svg-hush-filtered copy."""
    if not limits.allow_svg:
        return InspectorReport((Finding("svg_not_allowed", "the profile does not accept SVG"),))
    try:
        size = os.stat(sample.path).st_size
        if size > MAX_SVG_BYTES:
            return InspectorReport(
                (Finding("svg_too_large", f"{size} bytes, over {MAX_SVG_BYTES}"),)
            )
        with open(sample.path, "rb") as file:
            data = file.read()
        findings = _findings(data)
    except Exception:  # unreadable, or an encoding expat refuses: fail closed
        return InspectorReport((Finding("svg_invalid", "the file could not be read or parsed"),))
    # svg-hush rewrites the whole document and cannot say what it removed, so "when_needed"
    # rewrites as "always" does.
    if sample.sanitize_mode("svg") is SanitizeMode.NEVER or not _parsed(findings):
        return InspectorReport(findings)
    assert sample.sanitized_path is not None  # a mode other than NEVER promises a path
    problem = _write_copy(data, sample.sanitized_path)
    if problem is not None:
        return InspectorReport((*findings, problem))
    changes = ("rewritten by svg-hush (scripts, event handlers and external references dropped)",)
    return InspectorReport(
        findings, sanitized=True, sanitized_type="image/svg+xml", changes=changes
    )


def _findings(data: bytes) -> tuple[Finding, ...]:
    """Findings for the SVG document ``data``; one per code, the first seen."""
    try:
        root, instructions = _parse(data)
    except DefusedXmlException:
        return (Finding("xml_dtd", "the document has a DOCTYPE, which is never processed"),)
    except ET.ParseError as exc:
        return (Finding("svg_invalid", f"not well-formed XML (line {exc.position[0]})"),)
    if root.tag != f"{{{_SVG_NS}}}svg":
        return (Finding("svg_invalid", "the root element is not an SVG <svg> element"),)
    elements, depth = _shape(root)
    if elements > MAX_SVG_ELEMENTS or depth > MAX_SVG_DEPTH:
        message = f"{elements} elements nested {depth} deep"
        limit = f"at most {MAX_SVG_ELEMENTS} elements and {MAX_SVG_DEPTH} levels"
        return (Finding("svg_too_large", f"{message}; {limit}"),)
    seen: dict[str, Finding] = {}
    for code, message in (*_instruction_findings(instructions), *_tree_findings(root)):
        seen.setdefault(code, Finding(code, message))
    return tuple(seen.values())


def _parse(data: bytes) -> tuple[ET.Element, list[str]]:
    builder = _Builder()
    # forbid_dtd stops at the DOCTYPE itself, before a single entity is declared or expanded.
    parser = DefusedXMLParser(target=builder, forbid_dtd=True)
    parser.feed(data)
    root: ET.Element = parser.close()
    return root, builder.instructions


def _shape(root: ET.Element) -> tuple[int, int]:
    """How many elements the tree has and how deep it goes, counted level by level."""
    elements = depth = 0
    level = [root]
    while level:
        elements, depth = elements + len(level), depth + 1
        level = [child for element in level for child in element]
    return elements, depth


def _instruction_findings(instructions: list[str]) -> Iterator[tuple[str, str]]:
    for target in instructions:
        if target.lower() == "xml-stylesheet":
            # An XSLT stylesheet can rewrite the document into HTML with script.
            yield _EXTERNAL, "an <?xml-stylesheet?> instruction loads a stylesheet"


def _tree_findings(root: ET.Element) -> Iterator[tuple[str, str]]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        namespace, name = _split(element.tag)
        yield from _element_findings(namespace, name)
        for key, value in element.attrib.items():
            yield from _attribute_findings(name, _split(key)[1], value)
        if name == "style" and element.text:
            yield from _css_findings(element.text)


def _element_findings(namespace: str, name: str) -> Iterator[tuple[str, str]]:
    if name in _ACTIVE_ELEMENTS or namespace == _XHTML_NS:
        yield _ACTIVE, f"a <{name}> element"
    if namespace == _XINCLUDE_NS:
        yield _EXTERNAL, "an XInclude element"


def _attribute_findings(element: str, attribute: str, value: str) -> Iterator[tuple[str, str]]:
    lowered = attribute.lower()
    if lowered.startswith("on"):
        yield _ACTIVE, f"an event handler attribute {attribute!r}"
    elif lowered == "attributename" and value.strip().lower().startswith("on"):
        yield _ACTIVE, "an animation that sets an event handler"
    if _SCRIPT_URL.search(_squash(value)):
        yield _ACTIVE, f"a script URL in {attribute!r}"
    # A link on <a> is followed only when clicked, like a link in a PDF; it loads nothing.
    if lowered in ("href", "src") and element != "a" and _is_external(value):
        yield _EXTERNAL, f"<{element}> refers to another origin"
    if lowered == "style" or "url(" in value.lower():
        yield from _css_findings(value)


def _css_findings(css: str) -> Iterator[tuple[str, str]]:
    if _CSS_IMPORT.search(css):
        yield _EXTERNAL, "a stylesheet @import"
    if _CSS_SCRIPT.search(css):
        yield _ACTIVE, "CSS that runs script"
    for url in _CSS_URL.findall(css):
        if _SCRIPT_URL.search(_squash(url)):
            yield _ACTIVE, "a script URL in CSS"
        elif _is_external(url):
            yield _EXTERNAL, "a CSS url() to another origin"


def _is_external(url: str) -> bool:
    """True for absolute and scheme-relative URLs; fragments, paths and data: stay inside."""
    squashed = _squash(url).replace("\\", "/")
    if squashed.startswith("data:"):
        return False
    return squashed.startswith("//") or bool(_SCHEME.match(squashed))


def _squash(value: str) -> str:
    """Lowercase, without the whitespace and control characters browsers ignore in URLs."""
    return re.sub(r"[\x00-\x20\x7f]", "", value).lower()


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _parsed(findings: tuple[Finding, ...]) -> bool:
    """True when the document parsed as an SVG within the caps, so it may be filtered."""
    return not any(f.code in ("xml_dtd", "svg_invalid", "svg_too_large") for f in findings)


def _write_copy(data: bytes, path: str) -> Finding | None:
    """Write svg-hush's output to ``path`` if it passes inspection; else say why not."""
    from py_svg_hush import filter_svg  # noqa: PLC0415 - loaded only where SVGs are inspected

    try:
        clean = filter_svg(data, _KEPT_DATA_TYPES)
        # Defence in depth: the filter's output must itself be clean, or it is not used.
        left = _findings(clean)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # ValueError when it cannot parse; a Rust panic is a BaseException
        return Finding("svg_sanitize_failed", "svg-hush could not filter the document")
    if left:
        return Finding("svg_sanitize_failed", f"the filtered copy still has {left[0].code}")
    try:
        with open(path, "wb") as file:
            file.write(clean)
    except OSError as exc:
        return Finding("svg_sanitize_failed", f"the copy could not be written ({exc.strerror})")
    return None
