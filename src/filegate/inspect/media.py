"""Audio and video (MP4/MOV/M4A, Matroska/WebM, MP3, Ogg, WAV, FLAC): FFmpeg (PyAV) demuxes
the container without decoding, caps are checked against its headers and packet times, and the
raw bytes are scanned for a second file riding along.

Frames are never decoded: decoding a film costs minutes of CPU, and what is refused here is
the container (its shape, size, extra files and trailing bytes), not the codec payload. Where
the container ends is found by a short walk of its top-level structure, as images.py does.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from filegate.domain import Finding
from filegate.inspect.base import InspectorReport, Limits, Sample, one_per_code
from filegate.inspect.signatures import NOT_PADDING, Buffer, find_markup, zip_signature_at
from filegate.inspect.types import normalise

if TYPE_CHECKING:  # PyAV loads FFmpeg (~20 MB); only the sandbox child ever demuxes
    from av.container import InputContainer
    from av.stream import Stream

CODES: dict[str, str] = {
    "media_invalid": "The container does not demux, or holds no audio or video stream.",
    "media_container_mismatch": "The container is not the one the detected type promises.",
    "media_too_long": "The media runs longer than allowed.",
    "media_too_many_pixels": "A video stream has more pixels per frame than allowed.",
    "media_too_many_streams": "The container holds more streams than allowed.",
    "media_attachment": "The container carries an attached file (font, document, anything).",
    "media_polyglot": "A ZIP archive or HTML, script, PHP or SVG markup sits inside the bytes.",
    "media_trailing_data": "Bytes follow the container's end (a way to smuggle a payload).",
}

# FFmpeg's demuxer names ("mov,mp4,m4a,3gp,3g2,mj2" is one demuxer) for each family of types.
_ISO = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})
_MATROSKA = frozenset({"matroska,webm"})

# Only these demuxers may run at all: playlist formats (hls, concat) open other files and URLs.
_OPEN_OPTIONS = {
    "format_whitelist": "mov,matroska,mp3,ogg,wav,flac",
    "protocol_whitelist": "file",
    # Stream parameters are read from the first 5 MB / 5 s; real files need far less.
    "probesize": str(5 * 1024 * 1024),
    "analyzeduration": str(5_000_000),
}

# Markup is looked for only near the end: over a gigabyte of compressed samples, random bytes
# spell a short tag such as "<?php" now and then, while a browser sniffing a polyglot reads its
# last bytes too.
_MARKUP_TAIL = 64 * 1024

# Real files have a handful of top-level boxes, or two per fragment when fragmented (a few
# thousand); more means boxes made tiny to make the walk slow, and the end stays unknown.
_MAX_BOXES = 1_000_000
# Box types are four printable characters (0xA9 is the "©" of QuickTime's own types).
_BOX_TYPE = re.compile(rb"[\x20-\x7e\xa9]{4}")
# A box of one of these types that runs past the end means the file was cut short; any other
# "box" there is bytes that merely follow the file and happen to parse.
_ISO_CORE_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"moof", b"mfra", b"free", b"skip"})
# meta items that hold a picture (or data about one), as HEIF/MIAF declares its images.
_IMAGE_ITEMS = frozenset(
    {b"hvc1", b"av01", b"avc1", b"jpeg", b"j2k1", b"grid", b"iden", b"iovl", b"tmap", b"Exif"}
)
_IMAGE_MIME = (b"image/", b"application/rdf+xml")

_EBML = 0x1A45DFA3
_SEGMENT = 0x18538067
_ATTACHMENTS = 0x1941A469
# A Segment holds a few elements plus one Cluster per second or so; see _MAX_BOXES.
_MAX_ELEMENTS = 1_000_000

# Pages hold up to 64 KiB; even live streams flushed every packet write ~50 a second, so this
# covers the longest allowed file. Past it the end stays unknown rather than cost minutes.
_MAX_OGG_PAGES = 2_000_000
# RIFF writers that cannot seek back leave the size unset, as 0 or all ones.
_RIFF_UNSET = frozenset({0, 0xFFFFFFFF})


class _Malformed(ValueError):
    """The bytes do not follow the container's structure at all; the demuxer says more."""


@dataclass(frozen=True, slots=True)
class _Family:
    demuxers: frozenset[str]
    # Offset just past the container (past the file when truncated); None when unknowable.
    end_of: Callable[[Buffer], int | None] | None = None
    # Offsets of files embedded where FFmpeg does not show them as attachment streams.
    embedded: Callable[[Buffer], list[int]] | None = None


def inspect_media(sample: Sample, limits: Limits) -> InspectorReport:
    """Check an audio or video file's container, caps, embedded files and trailing bytes."""
    detected = normalise(sample.detected_type)
    family = _FAMILIES.get(detected)
    if family is None:
        return InspectorReport((Finding("media_invalid", f"{detected} is not handled here"),))
    try:
        raw = _raw_findings(sample.path, family)
    except Exception:  # unreadable or empty: nothing to demux either
        return InspectorReport((Finding("media_invalid", "the file could not be read"),))
    # The demuxer's view first: an attachment it shows is named by stream, not by byte.
    return InspectorReport(one_per_code([*_demux_findings(sample.path, family, limits), *raw]))


# --- the raw bytes: structure, embedded files, trailing data, polyglots -----------------------


def _raw_findings(path: str, family: _Family) -> list[Finding]:
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        end = _end_of(buf, family)
        return [
            *_structure_findings(buf, end),
            *_embedded_findings(buf, family),
            *_polyglot_findings(buf, end),
        ]


def _end_of(buf: Buffer, family: _Family) -> int | None:
    if family.end_of is None:
        return None
    try:
        return family.end_of(buf)
    except (_Malformed, struct.error, IndexError):
        return None  # not even the outline of the container: the demuxer reports it


def _structure_findings(buf: Buffer, end: int | None) -> Iterator[Finding]:
    if end is None:
        return
    size = len(buf)
    if end > size:
        message = f"the container's structure runs {end - size} bytes past the file's end"
        yield Finding("media_invalid", message, where=f"byte {size}")
    elif NOT_PADDING.search(buf, end):
        yield Finding(
            "media_trailing_data", f"{size - end} bytes follow the container's end", f"byte {end}"
        )


def _embedded_findings(buf: Buffer, family: _Family) -> Iterator[Finding]:
    try:
        offsets = family.embedded(buf) if family.embedded else []
    except (_Malformed, struct.error, IndexError):
        return
    for offset in offsets:
        yield Finding(
            "media_attachment", "the container declares an embedded file", f"byte {offset}"
        )


def _polyglot_findings(buf: Buffer, end: int | None) -> Iterator[Finding]:
    if (at := zip_signature_at(buf)) is not None:
        yield Finding("media_polyglot", "the bytes contain a ZIP archive", where=f"byte {at}")
    start = max(0, len(buf) - _MARKUP_TAIL)
    if end is not None and end < start:
        start = end  # trailing data is never media, so all of it is searched
    if found := find_markup(buf, start):
        offset, marker = found
        shown = marker.decode("latin-1").rstrip()
        yield Finding("media_polyglot", f"the bytes contain {shown!r}", where=f"byte {offset}")


# --- ISO base media (MP4, MOV, M4A) -----------------------------------------------------------


def _boxes(buf: Buffer, pos: int, stop: int) -> Iterator[tuple[int, bytes, int]]:
    """Boxes from ``pos`` as (offset, type, end) until one has no plausible header."""
    for _ in range(_MAX_BOXES):
        if pos + 8 > stop:
            return
        length, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if length == 1 and pos + 16 <= stop:
            (length,), header = struct.unpack_from(">Q", buf, pos + 8), 16
        elif length == 0:
            length = stop - pos  # "to the end of the file"
        if length < header or not _BOX_TYPE.fullmatch(kind):
            return
        yield pos, kind, pos + length
        pos += length
    raise _Malformed


def _iso_end(buf: Buffer) -> int | None:
    end = 0
    for _, kind, stop in _boxes(buf, 0, len(buf)):
        if stop > len(buf) and kind not in _ISO_CORE_BOXES:
            break
        end = stop
        if end >= len(buf):
            break
    if end == 0:
        raise _Malformed
    return end


def _iso_items(buf: Buffer) -> list[int]:
    """Offsets of top-level ``meta`` items that are not pictures (HEIF-style item boxes)."""
    found = []
    for pos, kind, stop in _boxes(buf, 0, len(buf)):
        if kind == b"meta":
            # ISO's meta is a full box (4 bytes of version and flags); QuickTime's is not.
            first = pos + 12 if buf[pos + 8 : pos + 12] == b"\0\0\0\0" else pos + 8
            found += _foreign_items(buf, first, min(stop, len(buf)))
    return found


def _foreign_items(buf: Buffer, pos: int, stop: int) -> list[int]:
    found = []
    for child, kind, end in _boxes(buf, pos, stop):
        if kind == b"iinf" and end <= stop:
            first = child + 14 if buf[child + 8] == 0 else child + 16  # past the entry count
            items = [at for at, item, _ in _boxes(buf, first, end) if item == b"infe"]
            found += [at for at in items if not _is_picture(buf, at)]
    return found


def _is_picture(buf: Buffer, pos: int) -> bool:
    """Whether the ``infe`` box at ``pos`` declares an image (or Exif/XMP about one)."""
    version = buf[pos + 8]
    if version < 2:  # item id, protection index, then name and content type strings
        return _content_type(buf, pos + 16, 2).startswith(_IMAGE_MIME)
    kind_at = pos + 16 if version == 2 else pos + 18  # past a 2- or 4-byte item id
    kind = bytes(buf[kind_at : kind_at + 4])
    if kind == b"mime":
        return _content_type(buf, kind_at + 4, 2).startswith(_IMAGE_MIME)
    return kind in _IMAGE_ITEMS


def _content_type(buf: Buffer, pos: int, index: int) -> bytes:
    """The ``index``-th (1-based) NUL-terminated string from ``pos``, lowercased."""
    strings = bytes(buf[pos : pos + 512]).split(b"\0")
    return strings[index - 1].lower() if len(strings) >= index else b""


# --- Matroska / WebM ---------------------------------------------------------------------------


def _vint(buf: Buffer, pos: int, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer: (value, next offset); None for "unknown size"."""
    first = buf[pos]
    length = 9 - first.bit_length()
    if length > 8:
        raise _Malformed
    raw = int.from_bytes(buf[pos : pos + length], "big")
    value = raw if keep_marker else raw & ~(1 << (7 * length))
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return (None if unknown else value), pos + length


def _element(buf: Buffer, pos: int) -> tuple[int, int | None, int]:
    """(id, size or None, offset of the data) of the element at ``pos``."""
    ident, pos = _vint(buf, pos, keep_marker=True)
    size, pos = _vint(buf, pos, keep_marker=False)
    if ident is None:  # ids keep their marker bit, so this is never reached
        raise _Malformed
    return ident, size, pos


def _segment(buf: Buffer) -> tuple[int, int | None]:
    """(offset of the Segment's data, its end or None when its size is unknown)."""
    ident, size, pos = _element(buf, 0)
    if ident != _EBML or size is None:
        raise _Malformed
    ident, size, pos = _element(buf, pos + size)
    if ident != _SEGMENT:
        raise _Malformed
    return pos, None if size is None else pos + size


def _matroska_end(buf: Buffer) -> int | None:
    return _segment(buf)[1]


def _matroska_attachments(buf: Buffer) -> list[int]:
    """Offsets of Attachments elements, which FFmpeg hides when one lacks a name or type."""
    pos, end = _segment(buf)
    stop = min(len(buf), end or len(buf))
    found = []
    for _ in range(_MAX_ELEMENTS):
        if pos >= stop:
            break
        ident, size, data = _element(buf, pos)
        if ident == _ATTACHMENTS:
            found.append(pos)
        if size is None:
            break  # a live recording's unknown-size cluster: nothing further is walkable
        pos = data + size
    return found


# --- Ogg and RIFF/WAVE -------------------------------------------------------------------------


def _ogg_end(buf: Buffer) -> int | None:
    """The offset just past the last of the pages that follow each other from the start."""
    if buf[:4] != b"OggS":
        raise _Malformed
    pos, size = 0, len(buf)
    for _ in range(_MAX_OGG_PAGES):
        if pos + 27 > size or buf[pos : pos + 4] != b"OggS":
            return pos
        segments = buf[pos + 26]
        pos += 27 + segments + sum(buf[pos + 27 : pos + 27 + segments])
        if pos >= size:
            return pos
    return None


def _riff_end(buf: Buffer) -> int | None:
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise _Malformed
    size = int.from_bytes(buf[4:8], "little")
    return None if size in _RIFF_UNSET else 8 + size


_ISO_FAMILY = _Family(_ISO, _iso_end, _iso_items)
_MATROSKA_FAMILY = _Family(_MATROSKA, _matroska_end, _matroska_attachments)
_OGG_FAMILY = _Family(frozenset({"ogg"}), _ogg_end)
_WAV_FAMILY = _Family(frozenset({"wav"}), _riff_end)
# MP3 frames and FLAC blocks run to the end with no length field: no end to compare with.
_MP3_FAMILY = _Family(frozenset({"mp3"}))
_FLAC_FAMILY = _Family(frozenset({"flac"}))

# Names libmagic and Magika give (after types.normalise) -> what their content must demux as.
_FAMILIES: dict[str, _Family] = {
    "video/mp4": _ISO_FAMILY,
    "video/quicktime": _ISO_FAMILY,
    "audio/x-m4a": _ISO_FAMILY,
    "audio/mp4": _ISO_FAMILY,
    "video/webm": _MATROSKA_FAMILY,
    "audio/webm": _MATROSKA_FAMILY,
    "video/x-matroska": _MATROSKA_FAMILY,
    "audio/x-matroska": _MATROSKA_FAMILY,
    "audio/mpeg": _MP3_FAMILY,
    "audio/ogg": _OGG_FAMILY,
    "application/ogg": _OGG_FAMILY,
    "audio/opus": _OGG_FAMILY,
    "video/ogg": _OGG_FAMILY,
    "audio/x-wav": _WAV_FAMILY,
    "audio/wav": _WAV_FAMILY,
    "audio/vnd.wave": _WAV_FAMILY,
    "audio/flac": _FLAC_FAMILY,
    "audio/x-flac": _FLAC_FAMILY,
}

MEDIA_TYPES: frozenset[str] = frozenset(_FAMILIES)
# FFmpeg's AV_TIME_BASE (avutil.h) and AV_DISPOSITION_ATTACHED_PIC (avformat.h), fixed in its
# ABI: named here so PyAV need not be imported to read them.
_AV_TIME_BASE = 1_000_000
_ATTACHED_PIC = 0x0400


# --- the container, as FFmpeg demuxes it --------------------------------------------------------


def _demux_findings(path: str, family: _Family, limits: Limits) -> list[Finding]:
    import av  # noqa: PLC0415 - FFmpeg is loaded where files are inspected, not in the API

    av.logging.set_level(av.logging.PANIC)  # FFmpeg writes every complaint to stderr otherwise
    try:
        with av.open(path, "r", options=dict(_OPEN_OPTIONS)) as container:
            return _container_findings(container, family, limits)
    except Exception as exc:  # hostile input: every demuxer error is a finding
        # The exception's text may quote the file's bytes or our paths; its type is enough.
        return [Finding("media_invalid", f"the container does not demux ({type(exc).__name__})")]


def _container_findings(
    container: InputContainer, family: _Family, limits: Limits
) -> list[Finding]:
    name = container.format.name
    if name not in family.demuxers:
        expected = ", ".join(sorted(family.demuxers))
        message = f"the content demuxes as {name}, not {expected}"
        return [Finding("media_container_mismatch", message)]
    # Caps come from the headers, before a single packet is read.
    findings = list(_stream_findings(container, limits))
    return findings or _packet_findings(container, limits)


def _stream_findings(container: InputContainer, limits: Limits) -> Iterator[Finding]:
    streams = list(container.streams)
    if len(streams) > limits.max_media_streams:
        message = f"{len(streams)} streams, over {limits.max_media_streams}"
        yield Finding("media_too_many_streams", message)
    for stream in streams:
        yield from _stream_caps(stream, limits)
    if not any(_is_media(stream) for stream in streams):
        yield Finding("media_invalid", "the container holds no audio or video stream")
    seconds = _declared_seconds(container)
    if seconds > limits.max_media_seconds:
        message = f"the headers declare {seconds:.0f} s, over {limits.max_media_seconds} s"
        yield Finding("media_too_long", message)


def _stream_caps(stream: Stream, limits: Limits) -> Iterator[Finding]:
    where = f"stream {stream.index}"
    if stream.type == "attachment":
        yield Finding("media_attachment", "the container carries an attached file", where)
    if stream.type == "video":
        # Cover art is a still picture, but it is decoded by every player all the same.
        width, height = int(getattr(stream, "width", 0)), int(getattr(stream, "height", 0))
        pixels = width * height
        if pixels > limits.max_pixels:
            message = f"{width}x{height} is over {limits.max_pixels} pixels"
            yield Finding("media_too_many_pixels", message, where)


def _is_media(stream: Stream) -> bool:
    """Audio, or video that is not just cover art."""
    if stream.type == "audio":
        return True
    return stream.type == "video" and not stream.disposition & _ATTACHED_PIC


def _declared_seconds(container: InputContainer) -> float:
    """The longest duration the container or any of its streams declares."""
    durations = [Fraction(container.duration or 0, _AV_TIME_BASE)]
    for stream in container.streams:
        if stream.duration and stream.time_base:
            durations.append(stream.duration * stream.time_base)
    return float(max(durations))


def _packet_findings(container: InputContainer, limits: Limits) -> list[Finding]:
    """Demux every packet (proving the container's structure holds) without decoding."""
    ceilings = {stream.index: _ceiling(stream, limits) for stream in container.streams}
    packets = 0
    for packet in container.demux():
        if not packet.size:
            continue  # the empty packet each stream ends with
        packets += 1
        stamp = packet.pts if packet.pts is not None else packet.dts
        ceiling = ceilings.get(packet.stream_index)
        if stamp is not None and ceiling is not None and stamp > ceiling:
            message = f"packets run past {limits.max_media_seconds} s"
            return [Finding("media_too_long", message, where=f"stream {packet.stream_index}")]
    if not packets:
        return [Finding("media_invalid", "the container holds no media data")]
    return []


def _ceiling(stream: Stream, limits: Limits) -> int | None:
    """The last timestamp within the duration cap, in the stream's own time base."""
    if not stream.time_base:
        return None
    # Recordings of live streams start at the broadcast's clock, not at zero.
    return (stream.start_time or 0) + int(limits.max_media_seconds / stream.time_base)
