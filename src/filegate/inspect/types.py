"""The media types this version knows, the extensions each may carry, and their equivalences."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

MEDIA_TYPES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "image/png": frozenset({"png"}),
        "image/jpeg": frozenset({"jpg", "jpeg", "jpe"}),
        "image/gif": frozenset({"gif"}),
        "image/webp": frozenset({"webp"}),
        "application/pdf": frozenset({"pdf"}),
        "text/plain": frozenset({"txt", "text", "log", "md"}),
        "text/csv": frozenset({"csv"}),
        "application/json": frozenset({"json"}),
        "application/zip": frozenset({"zip"}),
        "application/gzip": frozenset({"gz", "tgz"}),
        "application/x-tar": frozenset({"tar"}),
        # Both detectors see only the word/, xl/ and ppt/ folders, so templates and shows
        # are detected as the document type they are built on.
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": frozenset(
            {"docx", "dotx"}
        ),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template": frozenset(
            {"dotx"}
        ),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": frozenset(
            {"xlsx", "xltx"}
        ),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template": frozenset({"xltx"}),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": frozenset(
            {"pptx", "potx", "ppsx"}
        ),
        "application/vnd.openxmlformats-officedocument.presentationml.template": frozenset(
            {"potx"}
        ),
        "application/vnd.openxmlformats-officedocument.presentationml.slideshow": frozenset(
            {"ppsx"}
        ),
        "application/vnd.oasis.opendocument.text": frozenset({"odt"}),
        "application/vnd.oasis.opendocument.text-template": frozenset({"ott"}),
        "application/vnd.oasis.opendocument.spreadsheet": frozenset({"ods"}),
        "application/vnd.oasis.opendocument.spreadsheet-template": frozenset({"ots"}),
        "application/vnd.oasis.opendocument.presentation": frozenset({"odp"}),
        "application/vnd.oasis.opendocument.presentation-template": frozenset({"otp"}),
        "text/html": frozenset({"html", "htm"}),
        "image/svg+xml": frozenset({"svg"}),
        "application/octet-stream": frozenset({"bin"}),
    }
)

_BY_EXTENSION: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        extension: frozenset(t for t, exts in MEDIA_TYPES.items() if extension in exts)
        for extension in frozenset().union(*MEDIA_TYPES.values())
    }
)

# Other names browsers, operating systems and libmagic versions use for a type in the table.
_SYNONYMS: Mapping[str, str] = MappingProxyType(
    {
        "image/jpg": "image/jpeg",
        "image/pjpeg": "image/jpeg",
        "application/x-zip-compressed": "application/zip",
        "application/csv": "text/csv",
        "text/x-csv": "text/csv",
        "text/json": "application/json",
        "inode/x-empty": "application/x-empty",
        "application/x-gzip": "application/gzip",
    }
)

# libmagic has no signature for CSV or JSON: it may call them text/plain, and a .txt file that
# happens to be CSV-shaped is reported as text/csv. Within this family either name will do.
# HTML and SVG are deliberately absent: they are active content, never "just text".
_ALIASES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "text/plain": frozenset({"text/csv", "application/json"}),
        "text/csv": frozenset({"text/plain"}),
        "application/json": frozenset({"text/plain"}),
    }
)


def normalise(media_type: str) -> str:
    """Lowercase, without parameters, under its canonical name: ``Image/JPG; q=1`` -> image/jpeg."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return _SYNONYMS.get(essence, essence)


def extensions_for(media_type: str) -> frozenset[str]:
    """The extensions a file of ``media_type`` may carry; empty for an unknown type."""
    return MEDIA_TYPES.get(normalise(media_type), frozenset())


def types_for_extension(extension: str) -> frozenset[str]:
    """The media types a name ending in ``.extension`` promises; empty for an unknown one."""
    return _BY_EXTENSION.get(extension.lower().lstrip("."), frozenset())


def equivalents(media_type: str) -> frozenset[str]:
    """The type itself plus every type it may stand for (see ``_ALIASES``)."""
    canonical = normalise(media_type)
    return frozenset({canonical}) | _ALIASES.get(canonical, frozenset())


def matches(detected: str, candidates: Iterable[str]) -> bool:
    """True when ``detected``, or a type it may stand for, is among ``candidates``."""
    return not equivalents(detected).isdisjoint(normalise(c) for c in candidates)


def compatible(detected: str, extension: str | None) -> bool:
    """True when content of type ``detected`` may carry ``extension``.

    A name without an extension vouches for nothing, so it is compatible with nothing.
    """
    return extension is not None and matches(detected, types_for_extension(extension))


# Broad kinds of content. Two detectors that name different types in one family agree in
# substance (CSV vs plain text); different families mean one of them is being fooled.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("image/svg", "markup"),
    ("image/", "image"),
    ("text/html", "markup"),
    ("application/xhtml", "markup"),
    ("text/xml", "markup"),
    ("application/xml", "markup"),
    ("application/pdf", "pdf"),
    ("application/vnd.openxmlformats", "office"),
    ("application/vnd.oasis.opendocument", "office"),
    ("application/vnd.ms-", "office"),
    ("application/msword", "office"),
    ("application/x-ole-storage", "office"),
    ("application/cdfv2", "office"),
    ("application/zip", "archive"),
    ("application/x-tar", "archive"),
    ("application/gzip", "archive"),
    ("application/x-gzip", "archive"),
    ("application/x-bzip2", "archive"),
    ("application/x-xz", "archive"),
    ("application/java-archive", "archive"),
    ("text/", "text"),
    ("application/json", "text"),
    ("application/csv", "text"),
)
# Scripts are text to one detector and code to the other; the code inspector judges them.
_UNDECIDED = frozenset({"application/octet-stream", "application/x-empty", "inode/x-empty"})


def family(media_type: str) -> str | None:
    """The broad kind of ``media_type``, or None when it says nothing (octet-stream, unknown)."""
    canonical = normalise(media_type)
    if canonical in _UNDECIDED:
        return None
    for prefix, name in _FAMILY_PREFIXES:
        if canonical.startswith(prefix):
            return name
    return None
