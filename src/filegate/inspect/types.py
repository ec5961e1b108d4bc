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
