"""Signatures of a second file hidden in the bytes of another, shared by the inspectors.

They are scanned over whole files of up to gigabytes of compressed data, so each one is
constrained enough that random bytes essentially never match it.
"""

from __future__ import annotations

import mmap
import re

Buffer = bytes | mmap.mmap

# Zero padding after a file's end is what some writers leave; it can carry no payload.
NOT_PADDING = re.compile(rb"[^\x00]")

# A local file header with a plausible "version needed" and compression method, so four
# random bytes of pixel or sample data do not count (about one match in 2**55 positions).
ZIP_LOCAL = re.compile(rb"PK\x03\x04[\x00-\x3f]\x00..[\x00\x08\x09\x0c\x0e\x5d\x5f\x63]\x00", re.S)
ZIP_END = re.compile(rb"PK\x05\x06")
# Readers find a zip by its end record, which sits in the last 22 bytes plus a comment of at
# most 65,535 bytes; a signature further from the end makes no zip that a tool opens.
ZIP_TAIL = 22 + 0xFFFF


def zip_local_at(buf: Buffer, start: int = 0) -> int | None:
    """The offset of the first ZIP local file header at or after ``start``, or None."""
    found = ZIP_LOCAL.search(buf, start)
    return None if found is None else found.start()


def zip_end_at(buf: Buffer) -> int | None:
    """The offset of a ZIP end-of-central-directory record where readers look for one."""
    found = ZIP_END.search(buf, max(0, len(buf) - ZIP_TAIL))
    return None if found is None else found.start()


def zip_signature_at(buf: Buffer) -> int | None:
    """Where the bytes show a ZIP archive (a local header anywhere, or a tail end record)."""
    local = zip_local_at(buf)
    return local if local is not None else zip_end_at(buf)


# HTML, script, PHP or SVG that a browser or interpreter would run, matched in lowercased
# windows (case-insensitive alternation is ten times slower in `re`). Each is long enough that
# compressed bytes do not spell it by chance: a bare "<svg " would turn up once in a few
# hundred 30 MB photos, so an SVG tag counts only with a namespace or an event handler.
MARKUP = (
    re.compile(
        rb"<(?:script[\s/>]|html[\s>]|\?php|!doctype\s+html"
        rb"|svg[\s/][^<>]{0,256}?(?:xmlns|on[a-z]+\s*=))"
    ),
    re.compile(rb"javascript:"),
)
_WINDOW = 4 * 1024 * 1024
_OVERLAP = 300  # longer than any marker, so none is cut in two between windows


def find_markup(buf: Buffer, start: int = 0) -> tuple[int, bytes] | None:
    """The first marker of ``MARKUP`` at or after ``start``, as (offset, text), or None."""
    for offset in range(start, len(buf), _WINDOW):
        window = buf[offset : offset + _WINDOW + _OVERLAP].lower()
        hits = [found for pattern in MARKUP if (found := pattern.search(window))]
        if hits:
            first = min(hits, key=lambda found: found.start())
            return offset + first.start(), first.group()[:16]
    return None
