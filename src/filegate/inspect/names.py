"""Turn a client-supplied file name into a safe display name, noting everything that changed.

The display name is for humans (listings, ``Content-Disposition``); storage never uses it.
Every step is a small function ``(name, found) -> name`` that appends a finding when it changes
something meaningful; ``sanitize_filename`` runs them in order.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from filegate.domain import Finding

# ext4, NTFS, APFS and most other file systems cap one name component at 255 bytes.
MAX_NAME_BYTES = 255
# A "suffix" longer than this is just part of a long name, not an extension.
MAX_EXTENSION_BYTES = 32
# What an absent or fully stripped name becomes, so every file has something to show.
FALLBACK_NAME = "file"

# Bidi controls reorder what is displayed: "\u202egnp.exe" shows as "exe.png".
BIDI_CHARS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Invisible characters make two names that look identical differ, or hide a dot from a reader.
ZERO_WIDTH_CHARS = frozenset("\u200b\u200c\u200d\u2060\ufeff")
# Windows opens a device instead of a file for these stems, whatever follows the first dot.
# The superscript forms fold to digits under NFKC; they stay listed so the table is complete.
RESERVED_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)
# Run by a web server: every dot-separated part counts, because Apache's mod_mime (AddHandler)
# executes "shell.php.jpg" as PHP.
SERVER_SIDE_EXTENSIONS = frozenset(
    {"php", "php3", "php4", "php5", "php6", "php7", "php8", "phtml", "phar", "pht", "phps"}
    | {"asp", "aspx", "ashx", "asmx", "cer", "jsp", "jspx", "cgi", "pl", "py", "rb"}
    | {"sh", "bash", "shtml", "htaccess"}
)
# Run by a desktop or a browser when it is the *last* extension. HTML runs script in our
# origin; SVG is left to the active-content inspector. Only the last counts here, so
# "www.example.com.pdf" is a PDF.
DANGEROUS_EXTENSIONS = SERVER_SIDE_EXTENSIONS | frozenset(
    {"exe", "dll", "com", "bat", "cmd", "ps1", "vbs", "js", "jar", "msi", "scr", "hta"}
    | {"html", "htm", "xhtml"}
)

NAME_CODES: Mapping[str, str] = MappingProxyType(
    {
        "name_missing": "The client sent no file name; the display name is 'file'.",
        "name_path_stripped": "The name carried a directory or drive part, which was removed.",
        "name_encoded_traversal": "The name hides '../' behind percent-encoding.",
        "name_null_byte": "The name contained a NUL byte (raw or %00); it was cut there.",
        "name_control_chars": "Control characters (or unpaired surrogates) were removed.",
        "name_bidi_chars": "Bidirectional-text controls, which can disguise an extension, "
        "were removed.",
        "name_zero_width_chars": "Invisible zero-width characters were removed.",
        "name_ntfs_stream": "The name addressed an NTFS data stream ('::$DATA', ':$...').",
        "name_colon": "Colons (a stream separator on Windows) were replaced with '_'.",
        "name_dangerous_extension": "Some extension in the name is server-side or executable.",
        "name_trailing_dots": "Trailing dots or spaces (Windows drops them silently) were removed.",
        "name_leading_dots": "Leading dots, dashes or spaces (hidden or option-like names) "
        "were removed.",
        "name_reserved_device": "The name is a reserved Windows device; it was prefixed with '_'.",
        "name_too_long": f"The name was shortened to {MAX_NAME_BYTES} UTF-8 bytes.",
    }
)

# Sanitisation happened but the file itself can still be clean: these do not reject by default.
INFORMATIONAL_NAME_CODES: frozenset[str] = frozenset(
    {
        "name_path_stripped",
        "name_control_chars",
        "name_bidi_chars",
        "name_zero_width_chars",
        "name_trailing_dots",
        "name_leading_dots",
        "name_too_long",
        "name_missing",
        "name_reserved_device",
        "name_colon",
    }
)

# ".." as a whole path segment, without consuming the separators, so "../../" counts twice.
_TRAVERSAL_RE = re.compile(r"(?<![^/\\])\.\.(?![^/\\])")
_SEPARATOR_RE = re.compile(r"[/\\]")
# Colons and semicolons split too: IIS 6 runs "x.asp;.jpg" as ASP.
_EXTENSION_SPLIT_RE = re.compile(r"[.:;]")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_TRAILING_RE = re.compile(r"[.\s]+$")
# Spaces too: an unquoted shell argument " -rf" splits into "-rf".
_LEADING_RE = re.compile(r"^[.\-\s]+")

_Step = Callable[[str, list[Finding]], str]


@dataclass(frozen=True, slots=True)
class SanitizedName:
    """A display name, its lowercase extension (no dot) and what sanitising found."""

    display: str
    extension: str | None
    findings: tuple[Finding, ...]


def sanitize_filename(raw: str | None) -> SanitizedName:
    """Sanitise a client-supplied name; never raises, always returns a usable display name."""
    if not raw:
        return SanitizedName(FALLBACK_NAME, None, (Finding("name_missing", "no file name sent"),))
    found: list[Finding] = []
    name = raw
    for step in _STEPS:
        name = step(name, found)
    display = name or FALLBACK_NAME
    return SanitizedName(display, _extension(display), _first_per_code(found))


def _cut_at_nul(name: str, found: list[Finding]) -> str:
    # C code below us (and old PHP) would end the name here, so what follows never counts.
    head, nul, _ = name.partition("\x00")
    if nul:
        found.append(Finding("name_null_byte", "the name was cut at a NUL byte"))
    return head


def _remove_invisible(name: str, found: list[Finding]) -> str:
    kept: list[str] = []
    codes: set[str] = set()
    for char in name:
        code = _invisible_code(char)
        if code is None:
            kept.append(char)
        else:
            codes.add(code)
    found.extend(Finding(code, _REMOVED_MESSAGES[code]) for code in sorted(codes))
    return "".join(kept)


def _invisible_code(char: str) -> str | None:
    if char in BIDI_CHARS:
        return "name_bidi_chars"
    if char in ZERO_WIDTH_CHARS:
        return "name_zero_width_chars"
    # Unpaired surrogates (Cs) cannot be encoded as UTF-8 at all.
    if unicodedata.category(char) in ("Cc", "Cs"):
        return "name_control_chars"
    return None


_REMOVED_MESSAGES = {
    "name_bidi_chars": "bidirectional-text control characters were removed from the name",
    "name_zero_width_chars": "zero-width characters were removed from the name",
    "name_control_chars": "control characters were removed from the name",
}


def _normalise(name: str, found: list[Finding]) -> str:
    # Removal runs first: deleting a character between two others can make them composable,
    # and NFKC must see the final neighbours for the result to be stable.
    return unicodedata.normalize("NFKC", name)


def _check_encoded_traversal(name: str, found: list[Finding]) -> str:
    # Decoded only to look: a later layer that decodes again must not find a way up.
    if "%" in name:
        decoded = urllib.parse.unquote(name)
        if len(_TRAVERSAL_RE.findall(decoded)) > len(_TRAVERSAL_RE.findall(name)):
            found.append(Finding("name_encoded_traversal", "the name hides '../' as %-escapes"))
    return name


def _cut_at_encoded_nul(name: str, found: list[Finding]) -> str:
    head, nul, _ = name.partition("%00")
    if nul:
        found.append(Finding("name_null_byte", "the name was cut at an encoded NUL (%00)"))
    return head


def _strip_directories(name: str, found: list[Finding]) -> str:
    base = _DRIVE_RE.sub("", _SEPARATOR_RE.split(name)[-1], count=1)
    if base != name:
        found.append(Finding("name_path_stripped", "the directory part of the name was removed"))
    return base


def _defuse_colons(name: str, found: list[Finding]) -> str:
    # "x.php::$DATA" makes IIS serve source or Windows write "x.php"; "10:30.txt" is a time.
    head, colon, stream = name.partition(":")
    if not colon:
        return name
    if stream.startswith(":") or "$" in stream:
        found.append(Finding("name_ntfs_stream", "an NTFS stream suffix was removed"))
        return head
    found.append(Finding("name_colon", "colons in the name were replaced with '_'"))
    return name.replace(":", "_")


def _check_extensions(name: str, found: list[Finding]) -> str:
    # On Windows "x.asp:.jpg" writes "x.asp"; IIS runs "x.asp;.jpg" as ASP.
    parts = [part.strip().lower() for part in _EXTENSION_SPLIT_RE.split(name)[1:]]
    if not parts:
        return name
    *inner, last = parts
    dangerous = sorted((set(inner) & SERVER_SIDE_EXTENSIONS) | ({last} & DANGEROUS_EXTENSIONS))
    if dangerous:
        listed = ", ".join(f".{ext}" for ext in dangerous)
        message = f"the name contains the server-side or executable extension {listed}"
        found.append(Finding("name_dangerous_extension", message))
    return name


def _strip_trailing(name: str, found: list[Finding]) -> str:
    stripped = _TRAILING_RE.sub("", name)
    if stripped != name:
        found.append(Finding("name_trailing_dots", "trailing dots or spaces were removed"))
    return stripped


def _strip_leading(name: str, found: list[Finding]) -> str:
    stripped = _LEADING_RE.sub("", name)
    if stripped != name:
        found.append(Finding("name_leading_dots", "leading dots, dashes or spaces were removed"))
    return stripped


def _defuse_device(name: str, found: list[Finding]) -> str:
    device = name.split(".", 1)[0].rstrip().upper()
    if device not in RESERVED_DEVICE_NAMES:
        return name
    found.append(Finding("name_reserved_device", f"{device} is a reserved Windows device name"))
    return f"_{name}"


def _cap_length(name: str, found: list[Finding]) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    found.append(Finding("name_too_long", f"the name was shortened to {MAX_NAME_BYTES} bytes"))
    stem, dot, extension = name.rpartition(".")
    suffix = f"{dot}{extension}"
    if stem and len(suffix.encode()) <= MAX_EXTENSION_BYTES:
        return _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode())) + suffix
    # No extension worth keeping: cut the whole name, which may now end in a dot or space.
    return _TRAILING_RE.sub("", _truncate_utf8(name, MAX_NAME_BYTES))


def _truncate_utf8(text: str, limit: int) -> str:
    # Dropping the bytes of a split character keeps the result valid UTF-8.
    return text.encode()[:limit].decode(errors="ignore")


def _extension(display: str) -> str | None:
    stem, dot, extension = display.rpartition(".")
    if not (dot and stem and extension) or len(extension.encode()) > MAX_EXTENSION_BYTES:
        return None
    return extension.lower()


def _first_per_code(found: list[Finding]) -> tuple[Finding, ...]:
    # Two steps can report the same code (a raw NUL and a %00); one finding per code is enough.
    first: dict[str, Finding] = {}
    for finding in found:
        first.setdefault(finding.code, finding)
    return tuple(first.values())


_STEPS: tuple[_Step, ...] = (
    _cut_at_nul,
    _remove_invisible,
    _normalise,
    _check_encoded_traversal,
    _cut_at_encoded_nul,
    _strip_directories,
    _check_extensions,
    _defuse_colons,
    _strip_trailing,
    _strip_leading,
    _defuse_device,
    _cap_length,
)
