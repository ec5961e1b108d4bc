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
        "image/tiff": frozenset({"tif", "tiff"}),
        "image/bmp": frozenset({"bmp", "dib"}),
        "image/vnd.microsoft.icon": frozenset({"ico"}),
        "image/heic": frozenset({"heic", "heif"}),
        "image/heif": frozenset({"heif", "heic"}),
        "image/avif": frozenset({"avif"}),
        "application/pdf": frozenset({"pdf"}),
        "text/plain": frozenset({"txt", "text", "log", "md", "markdown", "tsv", "tab"}),
        "text/csv": frozenset({"csv"}),
        "text/tab-separated-values": frozenset({"tsv", "tab"}),
        "text/markdown": frozenset({"md", "markdown"}),
        "text/rtf": frozenset({"rtf"}),
        # SubRip subtitles: numbered plain-text cues.
        "application/x-subrip": frozenset({"srt"}),
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
        "application/vnd.ms-word.document.macroenabled.12": frozenset({"docm"}),
        "application/vnd.ms-word.template.macroenabled.12": frozenset({"dotm"}),
        "application/vnd.ms-excel.sheet.macroenabled.12": frozenset({"xlsm"}),
        "application/vnd.ms-excel.template.macroenabled.12": frozenset({"xltm"}),
        "application/vnd.ms-excel.sheet.binary.macroenabled.12": frozenset({"xlsb"}),
        "application/vnd.ms-powerpoint.presentation.macroenabled.12": frozenset({"pptm"}),
        "application/vnd.ms-powerpoint.slideshow.macroenabled.12": frozenset({"ppsm"}),
        "application/vnd.ms-powerpoint.template.macroenabled.12": frozenset({"potm"}),
        # Legacy (OLE) Office; packages.ole_type tells them apart by their streams.
        "application/msword": frozenset({"doc", "dot"}),
        "application/vnd.ms-excel": frozenset({"xls", "xlt"}),
        "application/vnd.ms-powerpoint": frozenset({"ppt", "pps", "pot"}),
        "application/vnd.oasis.opendocument.text": frozenset({"odt"}),
        "application/vnd.oasis.opendocument.text-template": frozenset({"ott"}),
        "application/vnd.oasis.opendocument.spreadsheet": frozenset({"ods"}),
        "application/vnd.oasis.opendocument.spreadsheet-template": frozenset({"ots"}),
        "application/vnd.oasis.opendocument.presentation": frozenset({"odp"}),
        "application/vnd.oasis.opendocument.presentation-template": frozenset({"otp"}),
        # Audio and video, by container.
        "video/mp4": frozenset({"mp4", "m4v"}),
        "audio/mp4": frozenset({"m4a", "m4b", "mp4"}),
        "video/quicktime": frozenset({"mov", "qt"}),
        "video/webm": frozenset({"webm"}),
        "audio/webm": frozenset({"webm"}),
        "video/x-matroska": frozenset({"mkv"}),
        "audio/x-matroska": frozenset({"mka"}),
        "audio/mpeg": frozenset({"mp3"}),
        "audio/ogg": frozenset({"ogg", "oga", "opus"}),
        "video/ogg": frozenset({"ogv", "ogg"}),
        "audio/opus": frozenset({"opus"}),
        "audio/wav": frozenset({"wav"}),
        "audio/flac": frozenset({"flac"}),
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
        "image/x-ms-bmp": "image/bmp",
        "image/x-bmp": "image/bmp",
        "image/x-icon": "image/vnd.microsoft.icon",
        "image/heic-sequence": "image/heic",
        "image/heif-sequence": "image/heif",
        "application/rtf": "text/rtf",
        "text/srt": "application/x-subrip",
        "text/x-srt": "application/x-subrip",
        "text/x-markdown": "text/markdown",
        "text/tsv": "text/tab-separated-values",
        "audio/x-m4a": "audio/mp4",
        "audio/m4a": "audio/mp4",
        "audio/x-wav": "audio/wav",
        "audio/wave": "audio/wav",
        "audio/vnd.wave": "audio/wav",
        "audio/x-flac": "audio/flac",
        "audio/mp3": "audio/mpeg",
        "audio/x-mpeg": "audio/mpeg",
        "application/ogg": "audio/ogg",
        "audio/x-opus+ogg": "audio/opus",
    }
)

# libmagic has no signature for CSV or JSON: it may call them text/plain, and a .txt file that
# happens to be CSV-shaped is reported as text/csv. Within this family either name will do.
# HTML and SVG are deliberately absent: they are active content, never "just text".
_ALIASES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "text/plain": frozenset(
            {
                "text/csv",
                "application/json",
                "text/tab-separated-values",
                "text/markdown",
                "application/x-subrip",
            }
        ),
        "application/x-subrip": frozenset({"text/plain"}),
        "text/csv": frozenset({"text/plain"}),
        "application/json": frozenset({"text/plain"}),
        "text/tab-separated-values": frozenset({"text/plain"}),
        "text/markdown": frozenset({"text/plain"}),
        # HEIF is the container, HEIC its HEVC-coded flavour; tools name either.
        "image/heic": frozenset({"image/heif"}),
        "image/heif": frozenset({"image/heic"}),
        # One container for sound alone or with pictures; detectors and brands differ on which.
        "video/mp4": frozenset({"audio/mp4"}),
        "audio/mp4": frozenset({"video/mp4"}),
        "video/webm": frozenset({"audio/webm"}),
        "audio/webm": frozenset({"video/webm"}),
        "video/x-matroska": frozenset({"audio/x-matroska"}),
        "audio/x-matroska": frozenset({"video/x-matroska"}),
        "audio/ogg": frozenset({"video/ogg", "audio/opus"}),
        "video/ogg": frozenset({"audio/ogg"}),
        "audio/opus": frozenset({"audio/ogg"}),
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
    ("audio/", "media"),
    ("video/", "media"),
    ("text/rtf", "office"),
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
    ("application/x-subrip", "text"),
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
