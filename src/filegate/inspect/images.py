"""Raster images (PNG, JPEG, GIF, WebP): caps before decoding, a full decode, polyglot checks
on the raw bytes, and a re-encoded copy without metadata.

Size and frame caps are read from the headers before a single pixel is decoded, and this
module's own caps decide, whatever ``Image.MAX_IMAGE_PIXELS`` (process-global) says.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from filegate.domain import Finding
from filegate.inspect.base import Limits, Outcome, Sample

CODES: dict[str, str] = {
    "image_too_many_pixels": "The image (or its frames together) has more pixels than allowed.",
    "image_too_many_frames": "The animation has more frames than allowed.",
    "image_invalid": "The image does not decode as the type its content claims.",
    "image_truncated": "The image data ends before the image does.",
    "image_trailing_data": "Bytes follow the image's end marker (a way to smuggle a payload).",
    "image_embedded_markup": "HTML, script, PHP or SVG markup sits inside the image's bytes.",
    "image_polyglot": "A PDF or ZIP signature sits inside the image: it is also another file.",
    "image_metadata_removed": "EXIF, text, comments or an ICC profile were left out of the "
    "sanitised copy.",
    "image_frames_dropped": "The sanitised copy keeps only the first frame of the animation.",
    "image_sanitize_failed": "No sanitised copy could be written.",
}

# These describe what sanitising changed, not a hostile file; every other code rejects.
INFORMATIONAL_CODES = frozenset({"image_metadata_removed", "image_frames_dropped"})

# Decoding cost grows with every frame: an animation may decode this many times the pixels of
# the largest still image (1 Gpx at the default cap, a few seconds of CPU).
ANIMATION_PIXEL_FACTOR = 20
# Readers find a zip by its end record, which sits in the last 22 bytes plus a comment of at
# most 65,535 bytes; a signature further from the end makes no zip that a tool opens.
_ZIP_TAIL = 22 + 0xFFFF

# Matched in lowercased windows: case-insensitive alternation is ten times slower in `re`.
_MARKUP = (re.compile(rb"<(?:script[\s/>]|html[\s>]|\?php|svg[\s/>])"), re.compile(rb"javascript:"))
_WINDOW = 4 * 1024 * 1024
_OVERLAP = 16  # longer than any marker, so none is cut in two between windows
_PDF = re.compile(rb"%PDF-")
# A local file header with a plausible "version needed" and compression method, so four
# random bytes of pixel data do not count.
_ZIP_LOCAL = re.compile(rb"PK\x03\x04[\x00-\x3f]\x00..[\x00\x08\x09\x0c\x0e\x5d\x5f\x63]\x00", re.S)
_ZIP_END = re.compile(rb"PK\x05\x06")
# Zero padding after the end marker is what some encoders write; it can carry no payload.
_NOT_PADDING = re.compile(rb"[^\x00]")
# The next JPEG marker after entropy-coded data: not a stuffed 00, a restart marker or fill.
_JPEG_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")

# Pillow's names for what each key in ``info`` holds; pixels never depend on them.
_METADATA_KEYS = {
    "exif": "EXIF",
    "xmp": "XMP",
    "icc_profile": "ICC profile",
    "comment": "comments",
    "photoshop": "Photoshop/IPTC",
    "extension": "application extensions",
}
_GIF_ANIMATION_EXTENSIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
# JPEG APPn segments that are neither JFIF (APP0), nor Adobe colour (APP14), nor reported above.
_JPEG_OTHER_APPS = frozenset(f"APP{n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15))

_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that shows the picture upright.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Buffer = bytes | mmap.mmap


class _Malformed(ValueError):
    """The bytes do not follow the format's structure at all; the decoder says more."""


class _Refused(Exception):
    """A cap was hit; carries the finding to report."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class _Format:
    plugin: str
    names: frozenset[str]
    end_of: Callable[[Buffer], int | None]
    animated: bool


@dataclass(frozen=True, slots=True)
class _Job:
    sample: Sample
    limits: Limits
    fmt: _Format
    # WebP only: the first frame is VP8L, so the copy is lossless too.
    lossless: bool


def inspect_image(sample: Sample, limits: Limits) -> Outcome:
    """Check a PNG, JPEG, GIF or WebP and, when asked, write a metadata-free copy."""
    fmt = _FORMATS.get(sample.detected_type)
    if fmt is None:
        return Outcome((Finding("image_invalid", f"{sample.detected_type} is not handled here"),))
    try:
        raw, lossless = _raw_findings(sample.path, fmt)
    except Exception:  # unreadable or empty: nothing to decode either
        return Outcome((Finding("image_invalid", "the file could not be read"),))
    pixels, sanitized = _pixel_findings(_Job(sample, limits, fmt, lossless))
    if any(finding.code == "image_truncated" for finding in raw):
        # Data that visibly ends early explains why it does not decode.
        pixels = [finding for finding in pixels if finding.code != "image_invalid"]
    findings = _unique([*raw, *pixels])
    if not sanitized:
        return Outcome(findings)
    return Outcome(findings, sanitized=True, sanitized_type=sample.detected_type)


# --- the raw bytes: structure, trailing data, markup, polyglots -------------------------------


def _raw_findings(path: str, fmt: _Format) -> tuple[list[Finding], bool]:
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        findings = [*_structure_findings(buf, fmt), *_content_findings(buf)]
        return findings, fmt.plugin == "WEBP" and _webp_lossless(buf)


def _structure_findings(buf: Buffer, fmt: _Format) -> Iterator[Finding]:
    try:
        end = fmt.end_of(buf)
    except _Malformed:
        return
    if end is None:
        yield Finding("image_truncated", "the image ends before its end marker")
    elif _NOT_PADDING.search(buf, end):
        extra = len(buf) - end
        yield Finding("image_trailing_data", f"{extra} bytes follow the image's end marker")


def _content_findings(buf: Buffer) -> Iterator[Finding]:
    if markup := _find_markup(buf):
        shown = markup.decode("latin-1").rstrip()
        yield Finding("image_embedded_markup", f"the bytes contain {shown!r}")
    if _PDF.search(buf):
        yield Finding("image_polyglot", "the bytes contain a PDF header")
    if _ZIP_LOCAL.search(buf) or _ZIP_END.search(buf, max(0, len(buf) - _ZIP_TAIL)):
        yield Finding("image_polyglot", "the bytes contain a ZIP archive")


def _find_markup(buf: Buffer) -> bytes | None:
    """The first HTML, script, PHP or SVG marker in any letter case, or None."""
    for start in range(0, len(buf), _WINDOW):
        window = buf[start : start + _WINDOW + _OVERLAP].lower()
        for pattern in _MARKUP:
            if found := pattern.search(window):
                return found.group()
    return None


def _png_end(buf: Buffer) -> int | None:
    """The offset just past the IEND chunk; None when the file ends first."""
    _expect(buf, 0, b"\x89PNG\r\n\x1a\n")
    pos, size = 8, len(buf)
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", buf, pos)
        if not kind.isalpha():
            raise _Malformed  # chunk types are four ASCII letters
        pos += 12 + length
        if kind == b"IEND":
            return pos if pos <= size else None
    return None


def _jpeg_end(buf: Buffer) -> int | None:
    """The offset just past the last EOI; None when the file ends first."""
    _expect(buf, 0, b"\xff\xd8")
    # MPO (phone cameras' multi-picture JPEG) stores its extra images back to back.
    pos: int | None = 0
    end = None
    while pos is not None and buf[pos : pos + 2] == b"\xff\xd8":
        pos = end = _jpeg_image_end(buf, pos + 2)
    return end


def _jpeg_image_end(buf: Buffer, pos: int) -> int | None:
    """Walk segments from just after SOI to the matching EOI; thumbnails sit inside APP1."""
    size = len(buf)
    while pos + 2 <= size:
        if buf[pos] != 0xFF or buf[pos + 1] in (0x00, 0xFF):
            pos += 1  # stray or fill bytes, which decoders skip too
            continue
        marker = buf[pos + 1]
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        if pos + 4 > size:
            return None
        pos += 2 + int.from_bytes(buf[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            found = _JPEG_MARKER.search(buf, pos)
            if found is None:
                return None
            pos = found.start()
    return None


def _gif_end(buf: Buffer) -> int | None:
    """The offset just past the trailer byte; None when the file ends first."""
    if buf[:6] not in (b"GIF87a", b"GIF89a"):
        raise _Malformed
    if len(buf) < 13:
        return None
    pos = 13 + _color_table(buf[10])
    while pos < len(buf):
        block = buf[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:
            pos = _skip_sub_blocks(buf, pos + 2)
        elif block == 0x2C and pos + 10 <= len(buf):
            pos = _skip_sub_blocks(buf, pos + 11 + _color_table(buf[pos + 9]))
        else:
            raise _Malformed
    return None


def _color_table(flags: int) -> int:
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(buf: Buffer, pos: int) -> int:
    while pos < len(buf) and (length := buf[pos]):
        pos += 1 + length
    return pos + 1


def _webp_end(buf: Buffer) -> int | None:
    """The offset where the RIFF container ends; None when the file ends first."""
    _expect(buf, 0, b"RIFF")
    _expect(buf, 8, b"WEBP")
    end = 8 + int.from_bytes(buf[4:8], "little")
    return end if end <= len(buf) else None


def _webp_lossless(buf: Buffer) -> bool:
    """True when the first image chunk (of the first frame, if animated) is VP8L."""
    pos = 12
    while pos + 8 <= len(buf):
        kind, length = struct.unpack_from("<4sI", buf, pos)
        if kind == b"ANMF":
            pos += 8 + 16  # frame header: position, size, duration, flags
            continue
        if kind in (b"VP8 ", b"VP8L"):
            return bool(kind == b"VP8L")
        pos += 8 + length + (length & 1)
    return False


def _expect(buf: Buffer, offset: int, magic: bytes) -> None:
    if buf[offset : offset + len(magic)] != magic:
        raise _Malformed


_FORMATS = {
    "image/png": _Format("PNG", frozenset({"PNG"}), _png_end, animated=True),
    "image/jpeg": _Format("JPEG", frozenset({"JPEG", "MPO"}), _jpeg_end, animated=False),
    "image/gif": _Format("GIF", frozenset({"GIF"}), _gif_end, animated=True),
    "image/webp": _Format("WEBP", frozenset({"WEBP"}), _webp_end, animated=True),
}


# --- the pixels: caps, full decode, re-encode -------------------------------------------------


def _pixel_findings(job: _Job) -> tuple[list[Finding], bool]:
    """Findings from decoding, and whether a sanitised copy was written."""
    # The filter list is process-global, so this is not thread-safe; the sandbox process runs
    # one inspection at a time. Pillow's own bomb warning is silenced: our caps decide.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(job.sample.path, formats=[job.fmt.plugin]) as image:
                return _decode_and_sanitise(image, job)
        except _Refused as refused:
            return [refused.finding], False
        except Image.DecompressionBombError:
            return [Finding("image_too_many_pixels", "the image is over Pillow's own cap")], False
        except Exception as exc:  # hostile input: every decoder error is a finding
            return [_decode_failure(exc)], False


def _decode_and_sanitise(image: Image.Image, job: _Job) -> tuple[list[Finding], bool]:
    if image.format not in job.fmt.names:
        return [Finding("image_invalid", f"the content decodes as {image.format}")], False
    frames = _check_caps(image, job.limits)
    metadata = _decode_all(image, frames, job.limits)
    if job.sample.sanitized_path is None:
        return [], False
    return _write_copy(image, job, job.sample.sanitized_path, frames, metadata)


def _write_copy(
    image: Image.Image, job: _Job, path: str, frames: int, metadata: set[str]
) -> tuple[list[Finding], bool]:
    animated = job.fmt.animated and frames > 1
    keep = frames if animated and _fits_in_memory(image, frames, job.limits) else 1
    try:
        _sanitise(image, path, job.fmt, keep, job.lossless)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return [
            Finding("image_sanitize_failed", f"re-encoding failed ({type(exc).__name__})")
        ], False
    findings = []
    if metadata:
        kinds = ", ".join(sorted(metadata))
        findings.append(Finding("image_metadata_removed", f"left out of the copy: {kinds}"))
    if animated and keep < frames:
        message = f"{frames} frames are too many pixels to re-encode; the first is kept"
        findings.append(Finding("image_frames_dropped", message))
    return findings, True


def _check_caps(image: Image.Image, limits: Limits) -> int:
    """Refuse on dimensions or frame count, read from headers alone; return the frame count."""
    _check_pixels(image, limits)
    frames = int(getattr(image, "n_frames", 1))
    if frames > limits.max_frames:
        message = f"{frames} frames, over {limits.max_frames}"
        raise _Refused(Finding("image_too_many_frames", message))
    total = frames * image.width * image.height
    if total > limits.max_pixels * ANIMATION_PIXEL_FACTOR:
        message = f"{frames} frames of {image.width}x{image.height} are {total} pixels to decode"
        raise _Refused(Finding("image_too_many_pixels", message))
    return frames


def _check_pixels(image: Image.Image, limits: Limits) -> None:
    # A GIF frame may be larger than the canvas, and Pillow grows the image to fit it.
    if image.width * image.height > limits.max_pixels:
        message = f"{image.width}x{image.height} is over {limits.max_pixels} pixels"
        raise _Refused(Finding("image_too_many_pixels", message))


def _decode_all(image: Image.Image, frames: int, limits: Limits) -> set[str]:
    """Decode every frame (proving the data is valid); return the metadata kinds seen."""
    metadata: set[str] = set()
    for index in range(frames):
        image.seek(index)
        _check_pixels(image, limits)
        image.load()
        metadata |= _metadata_kinds(image)
    image.seek(0)
    return metadata


def _metadata_kinds(image: Image.Image) -> set[str]:
    kinds = {label for key, label in _METADATA_KEYS.items() if image.info.get(key)}
    extension = image.info.get("extension")
    if extension and bytes(extension[0][:11]) in _GIF_ANIMATION_EXTENSIONS:
        kinds.discard("application extensions")  # the loop count, which the copy keeps
    if getattr(image, "text", None):  # PNG tEXt / zTXt / iTXt, read by load()
        kinds.add("text chunks")
    if {marker for marker, _ in getattr(image, "applist", [])} & _JPEG_OTHER_APPS:
        kinds.add("APPn segments")
    return kinds


def _fits_in_memory(image: Image.Image, frames: int, limits: Limits) -> bool:
    # Pillow's writers hold every frame while encoding: all frames together may take as much
    # memory as one still image of the largest allowed size.
    return frames * image.width * image.height <= limits.max_pixels


def _decode_failure(exc: Exception) -> Finding:
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return Finding("image_truncated", "the image data ends early")
    # The exception's text may quote the file's bytes; its type is enough for a human.
    return Finding("image_invalid", f"the image does not decode ({type(exc).__name__})")


def _sanitise(image: Image.Image, path: str, fmt: _Format, frames: int, lossless: bool) -> None:
    """Re-encode pixels only: no EXIF, XMP, text, comments, ICC profile or trailing bytes.

    The ICC profile goes too: it is an opaque, parser-heavy blob (colour-management code has
    had memory-safety bugs) and can carry arbitrary data; without it viewers assume sRGB,
    which is what nearly every web image is anyway.
    """
    options: dict[str, Any] = {"format": fmt.plugin}
    if fmt.plugin == "JPEG":
        options["quality"] = 90
    if fmt.plugin == "WEBP":
        options.update(lossless=lossless, quality=90)
    if frames == 1:
        _bare(_upright(image)).save(path, **options)
        return
    copies, durations = [], []
    for index in range(frames):
        image.seek(index)
        copies.append(_bare(image))
        durations.append(image.info.get("duration", 0))
    image.seek(0)
    if (loop := image.info.get("loop")) is not None:
        options["loop"] = loop
    copies[0].save(path, save_all=True, append_images=copies[1:], duration=durations, **options)


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation to the pixels, since the tag that carried it is dropped.

    ``ImageOps.exif_transpose`` does the same but also rewrites the EXIF it keeps, which
    parses every IFD; only IFD0 is read here.
    """
    method = _UPRIGHT.get(image.getexif().get(_ORIENTATION, 1))
    return image if method is None else image.transpose(method)


def _bare(frame: Image.Image) -> Image.Image:
    """A copy of the pixels (and palette) whose ``info`` keeps only transparency."""
    copy = frame.copy()
    transparency = frame.info.get("transparency")
    copy.info = {} if transparency is None else {"transparency": transparency}
    return copy


def _unique(findings: list[Finding]) -> tuple[Finding, ...]:
    """One finding per code, the first one found."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.code, finding)
    return tuple(seen.values())
