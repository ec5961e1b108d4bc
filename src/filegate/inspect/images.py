"""Raster images (PNG, JPEG, GIF, WebP, TIFF, BMP, ICO, HEIC, AVIF): caps before decoding, a
full decode, polyglot checks on the raw bytes, and a faithful re-encoded copy without metadata.

Size and frame caps are read from the headers before a single pixel is decoded, and this
module's own caps decide, whatever ``Image.MAX_IMAGE_PIXELS`` (process-global) says. The copy
keeps what people see: every frame, the colour profile (checked and re-serialised by
LittleCMS), the orientation applied to the pixels, JPEG's own quantisation tables. Under
``when_needed`` a file with nothing to remove is not rewritten at all.
"""

from __future__ import annotations

import contextlib
import functools
import io
import mmap
import os
import re
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from filegate.domain import Finding, SanitizeMode
from filegate.inspect.base import InspectorReport, Limits, Sample, one_per_code
from filegate.inspect.signatures import NOT_PADDING, Buffer, find_markup, zip_signature_at

# Pillow is imported where pixels are decoded (the sandbox child), not in the API process.
if TYPE_CHECKING:
    from PIL import Image

CODES: dict[str, str] = {
    "image_too_many_pixels": "The image (or its frames together) has more pixels than allowed.",
    "image_too_many_frames": "The animation has more frames than allowed.",
    "image_invalid": "The image does not decode as the type its content claims.",
    "image_truncated": "The image data ends before the image does.",
    "image_trailing_data": "Bytes follow the image's end marker (a way to smuggle a payload).",
    "image_embedded_markup": "HTML, script, PHP or SVG markup sits inside the image's bytes.",
    "image_polyglot": "A PDF or ZIP signature sits inside the image: it is also another file.",
    "image_metadata_removed": "EXIF, XMP, text, comments, extra pictures or an invalid colour "
    "profile were left out of the sanitised copy.",
    "image_frames_dropped": "The sanitised copy keeps only the first frame of the animation.",
    "image_sanitize_failed": "No sanitised copy could be written.",
}

# These describe what sanitising changed, not a hostile file; every other code rejects.
INFORMATIONAL_CODES = frozenset({"image_metadata_removed", "image_frames_dropped"})

# Decoding cost grows with every frame: an animation may decode this many times the pixels of
# the largest still image (1 Gpx at the default cap, a few seconds of CPU).
ANIMATION_PIXEL_FACTOR = 10
_PDF = re.compile(rb"%PDF-")
# The next JPEG marker after entropy-coded data: not a stuffed 00, a restart marker or fill.
_JPEG_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")

# Pillow's names for what each key in ``info`` holds; pixels never depend on them. The ICC
# profile is not here: colours depend on it, so the copy keeps it (see ``_colour_profile``).
_METADATA_KEYS = {
    "exif": "EXIF",
    "xmp": "XMP",
    "comment": "comments",
    "photoshop": "Photoshop/IPTC",
    "extension": "application extensions",
}
# Raw findings whose bytes a copy leaves behind: under when_needed they call for one.
_REMOVABLE_CODES = frozenset({"image_trailing_data", "image_embedded_markup", "image_polyglot"})
# x265's speed/effort preset for HEIC copies (see ``_encoder_options``).
HEIF_PRESET = "medium"
# Pillow's writers hold every frame while encoding; a copy of this many bytes of pixels fits in
# the sandbox's 2 GiB beside the decoder and the type model. Past it, the first frame is kept.
COPY_BYTES = 768 * 1024 * 1024
_GIF_ANIMATION_EXTENSIONS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")
# JPEG APPn segments that are neither JFIF (APP0), nor Adobe colour (APP14), nor reported above.
_JPEG_OTHER_APPS = frozenset(f"APP{n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15))

# ISO/IEC 14496-12 and 23008-12 top-level boxes; anything else after them is not the image.
_BMFF_TOP_LEVEL = frozenset(
    {b"ftyp", b"meta", b"moov", b"mdat", b"free", b"skip", b"uuid", b"idat", b"pdin", b"wide"}
)

_ORIENTATION = 0x0112
# EXIF orientation -> the name of the ``Image.Transpose`` that shows the picture upright.
_UPRIGHT = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


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
    # The offset where the image's bytes end (None: they end early); None for formats whose
    # end is not written down (TIFF's directories may sit anywhere).
    end_of: Callable[[Buffer], int | None] | None
    animated: bool
    # The EXIF orientation tag is the format's own (HEIF and AVIF rotate in the container,
    # which their decoders apply).
    exif_orientation: bool = True


@dataclass(frozen=True, slots=True)
class _Job:
    sample: Sample
    limits: Limits
    fmt: _Format
    # WebP only: the first frame is VP8L, so the copy is lossless too.
    lossless: bool
    # Raw bytes that a copy would leave behind (trailing data, markup, an embedded archive).
    removable: bool = False


def inspect_image(sample: Sample, limits: Limits) -> InspectorReport:
    """Check a PNG, JPEG, GIF or WebP and, when asked, write a metadata-free copy."""
    fmt = _FORMATS.get(sample.detected_type)
    if fmt is None:
        return InspectorReport(
            (Finding("image_invalid", f"{sample.detected_type} is not handled here"),)
        )
    try:
        raw, lossless = _raw_findings(sample.path, fmt)
    except Exception:  # unreadable or empty: nothing to decode either
        return InspectorReport((Finding("image_invalid", "the file could not be read"),))
    removable = any(finding.code in _REMOVABLE_CODES for finding in raw)
    pixels, changes = _pixel_findings(_Job(sample, limits, fmt, lossless, removable))
    if any(finding.code == "image_truncated" for finding in raw):
        # Data that visibly ends early explains why it does not decode.
        pixels = [finding for finding in pixels if finding.code != "image_invalid"]
    findings = one_per_code([*raw, *pixels])
    if not changes:
        return InspectorReport(findings)
    return InspectorReport(
        findings, sanitized=True, sanitized_type=sample.detected_type, changes=changes
    )


# --- the raw bytes: structure, trailing data, markup, polyglots -------------------------------


def _raw_findings(path: str, fmt: _Format) -> tuple[list[Finding], bool]:
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        findings = [*_structure_findings(buf, fmt), *_content_findings(buf)]
        return findings, fmt.plugin == "WEBP" and _webp_lossless(buf)


def _structure_findings(buf: Buffer, fmt: _Format) -> Iterator[Finding]:
    if fmt.end_of is None:
        return
    try:
        end = fmt.end_of(buf)
    except _Malformed:
        return
    if end is None:
        yield Finding("image_truncated", "the image ends before its end marker")
    elif NOT_PADDING.search(buf, end):
        extra = len(buf) - end
        message = f"{extra} bytes follow the image's end marker"
        yield Finding("image_trailing_data", message, where=f"byte {end}")


def _content_findings(buf: Buffer) -> Iterator[Finding]:
    if markup := find_markup(buf):
        offset, text = markup
        shown = text.decode("latin-1").rstrip()
        message = f"the bytes contain {shown!r}"
        yield Finding("image_embedded_markup", message, where=f"byte {offset}")
    if pdf := _PDF.search(buf):
        yield Finding("image_polyglot", "the bytes contain a PDF header", f"byte {pdf.start()}")
    if (zipped := zip_signature_at(buf)) is not None:
        message = "the bytes contain a ZIP archive"
        yield Finding("image_polyglot", message, where=f"byte {zipped}")


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
    # MPO (phone cameras' multi-picture JPEG) stores its extra images back to back, some
    # writers with zero padding between them.
    pos: int | None = 0
    end = None
    while pos is not None and buf[pos : pos + 2] == b"\xff\xd8":
        pos = end = _jpeg_image_end(buf, pos + 2)
        if pos is not None and (after := NOT_PADDING.search(buf, pos)) is not None:
            pos = after.start()
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


def _bmp_end(buf: Buffer) -> int | None:
    """The file size the BMP header declares; writers that leave it 0 declare nothing."""
    _expect(buf, 0, b"BM")
    if len(buf) < 6 or not (declared := int.from_bytes(buf[2:6], "little")):
        raise _Malformed
    return declared if declared <= len(buf) else None


def _ico_end(buf: Buffer) -> int | None:
    """The end of the last image the ICO directory lists."""
    _expect(buf, 0, b"\x00\x00\x01\x00")
    count = int.from_bytes(buf[4:6], "little")
    if count == 0 or len(buf) < 6 + 16 * count:
        raise _Malformed
    end = 0
    for entry in range(6, 6 + 16 * count, 16):
        size, offset = struct.unpack_from("<II", buf, entry + 8)
        end = max(end, offset + size)
    return end if end <= len(buf) else None


def _bmff_end(buf: Buffer) -> int | None:
    """Where the ISO base media boxes (HEIF, AVIF) stop: past the last box, or where the bytes
    are no top-level box. A box whose size runs past the file means it ends early."""
    pos, size = 0, len(buf)
    while pos + 8 <= size:
        length, kind = struct.unpack_from(">I4s", buf, pos)
        if kind not in _BMFF_TOP_LEVEL:
            break  # not a box: whatever follows the last one
        if length == 1 and pos + 16 <= size:
            length = int.from_bytes(buf[pos + 8 : pos + 16], "big")
        elif length == 0:
            return size  # "to the end of the file"
        if length < 8:
            raise _Malformed
        pos += length
    return pos if pos <= size else None


def _expect(buf: Buffer, offset: int, magic: bytes) -> None:
    if buf[offset : offset + len(magic)] != magic:
        raise _Malformed


_HEIF = _Format("HEIF", frozenset({"HEIF"}), _bmff_end, animated=False, exif_orientation=False)
_FORMATS = {
    "image/png": _Format("PNG", frozenset({"PNG"}), _png_end, animated=True),
    "image/jpeg": _Format("JPEG", frozenset({"JPEG", "MPO"}), _jpeg_end, animated=False),
    "image/gif": _Format("GIF", frozenset({"GIF"}), _gif_end, animated=True),
    "image/webp": _Format("WEBP", frozenset({"WEBP"}), _webp_end, animated=True),
    # Multi-page TIFFs (fax, scans) are "animated": every page is kept.
    "image/tiff": _Format("TIFF", frozenset({"TIFF"}), None, animated=True),
    "image/bmp": _Format("BMP", frozenset({"BMP", "DIB"}), _bmp_end, animated=False),
    "image/vnd.microsoft.icon": _Format("ICO", frozenset({"ICO"}), _ico_end, animated=False),
    "image/heic": _HEIF,
    "image/heif": _HEIF,
    "image/avif": _Format(
        "AVIF", frozenset({"AVIF"}), _bmff_end, animated=True, exif_orientation=False
    ),
}
IMAGE_TYPES = frozenset(_FORMATS)


# --- the pixels: caps, full decode, re-encode -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Decoded:
    """What decoding every frame found out, for the copy to act on."""

    frames: int
    # Metadata kinds the copy leaves out ("EXIF", "XMP", ...).
    metadata: frozenset[str]
    # The colour profile re-serialised by LittleCMS; None when there is none or it is invalid.
    icc: bytes | None
    # The EXIF orientation differs from "upright": the copy turns the pixels instead.
    rotated: bool


@functools.cache
def _register_heif() -> None:
    """HEIC through libheif (inside the pillow-heif wheel), loaded on first use, where files are
    inspected; one decoder thread, since the sandbox runs one inspection at a time beside the
    uploads. Thumbnails, depth and auxiliary images are not read."""
    import pillow_heif  # noqa: PLC0415

    pillow_heif.register_heif_opener(
        decode_threads=1, thumbnails=False, depth_images=False, aux_images=False
    )


def _pixel_findings(job: _Job) -> tuple[list[Finding], tuple[str, ...]]:
    """Findings from decoding, and what the sanitised copy changed (empty: no copy)."""
    from PIL import Image  # noqa: PLC0415 - decoded in the sandbox, never in the API

    if job.fmt.plugin == "HEIF":
        _register_heif()
    # The filter list is process-global, so this is not thread-safe; the sandbox process runs
    # one inspection at a time. Pillow's own bomb warning is silenced: our caps decide.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # An icon whose directory states another size than its PNG frame; the frame decides.
        warnings.filterwarnings("ignore", "Image was not the expected size")
        try:
            with Image.open(job.sample.path, formats=[job.fmt.plugin]) as image:
                return _decode_and_sanitise(image, job)
        except _Refused as refused:
            return [refused.finding], ()
        except Image.DecompressionBombError:
            return [Finding("image_too_many_pixels", "the image is over Pillow's own cap")], ()
        except Exception as exc:  # hostile input: every decoder error is a finding
            return [_decode_failure(exc)], ()


def _decode_and_sanitise(image: Image.Image, job: _Job) -> tuple[list[Finding], tuple[str, ...]]:
    if image.format not in job.fmt.names:
        return [Finding("image_invalid", f"the content decodes as {image.format}")], ()
    frames = _check_caps(image, job.limits)
    decoded = _decode_all(image, frames, job)
    mode = job.sample.sanitize_mode("images")
    needed = bool(decoded.metadata) or decoded.rotated or job.removable
    if mode is SanitizeMode.NEVER or (mode is SanitizeMode.WHEN_NEEDED and not needed):
        return [], ()
    assert job.sample.sanitized_path is not None  # a mode other than NEVER promises a path
    return _write_copy(image, job, job.sample.sanitized_path, decoded)


def _write_copy(
    image: Image.Image, job: _Job, path: str, decoded: _Decoded
) -> tuple[list[Finding], tuple[str, ...]]:
    animated = job.fmt.animated and decoded.frames > 1
    keep = decoded.frames if animated and _fits_in_memory(image, decoded.frames) else 1
    try:
        _sanitise(image, path, job, keep, decoded.icc)
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        message = f"re-encoding failed ({type(exc).__name__})"
        return [Finding("image_sanitize_failed", message)], ()
    findings = []
    changes = ["re-encoded"]
    if decoded.metadata:
        kinds = ", ".join(sorted(decoded.metadata))
        findings.append(Finding("image_metadata_removed", f"left out of the copy: {kinds}"))
        changes.append(f"removed: {kinds}")
    if decoded.rotated:
        changes.append("EXIF orientation applied to the pixels")
    if decoded.icc is not None:
        changes.append("ICC colour profile kept")
    if job.removable:
        changes.append("bytes outside the image left out")
    if animated and keep < decoded.frames:
        message = f"{decoded.frames} frames are too many pixels to re-encode; the first is kept"
        findings.append(Finding("image_frames_dropped", message))
        changes.append(f"kept the first of {decoded.frames} frames")
    return findings, tuple(changes)


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


def _decode_all(image: Image.Image, frames: int, job: _Job) -> _Decoded:
    """Decode every frame (proving the data is valid) and note what a copy would change."""
    metadata: set[str] = set()
    for index in range(frames):
        image.seek(index)
        _check_pixels(image, job.limits)
        image.load()
        metadata |= _metadata_kinds(image)
    image.seek(0)
    if image.format == "MPO" and frames > 1:
        metadata.add("extra pictures (MPF)")  # the copy is a plain JPEG of the first one
    icc = _colour_profile(image)
    if image.info.get("icc_profile") and icc is None:
        metadata.add("an invalid ICC profile")
    rotated = job.fmt.exif_orientation and _orientation(image) is not None
    return _Decoded(frames, frozenset(metadata), icc, rotated)


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


def _colour_profile(image: Image.Image) -> bytes | None:
    """The ICC profile, parsed and written anew by LittleCMS, or None if it does not parse.

    Colours depend on it (a phone's Display P3 photo shifts without it), so it is kept; what is
    kept is LittleCMS's serialisation of what it understood, not the uploaded bytes.
    """
    from PIL import ImageCms  # noqa: PLC0415

    raw = image.info.get("icc_profile")
    if not raw:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(raw))
        return bytes(profile.tobytes())
    except Exception:  # an invalid profile is left out, and reported as removed
        return None


def _fits_in_memory(image: Image.Image, frames: int) -> bool:
    # Palette and grey frames take a byte per pixel; Pillow stores every other mode in four.
    per_pixel = 1 if image.mode in ("1", "L", "P") else 4
    return frames * image.width * image.height * per_pixel <= COPY_BYTES


def _decode_failure(exc: Exception) -> Finding:
    if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return Finding("image_truncated", "the image data ends early")
    # The exception's text may quote the file's bytes; its type is enough for a human.
    return Finding("image_invalid", f"the image does not decode ({type(exc).__name__})")


def _sanitise(image: Image.Image, path: str, job: _Job, frames: int, icc: bytes | None) -> None:
    """Re-encode the pixels with the colour profile and nothing else: no EXIF, XMP, text,
    comments or trailing bytes."""
    options = _encoder_options(image, job)
    if icc is not None:
        options["icc_profile"] = icc
    if frames == 1:
        first = _upright(image) if job.fmt.exif_orientation else image
        _bare(first).save(path, **options)
        return
    copies, durations = [], []
    for index in range(frames):
        image.seek(index)
        copies.append(_bare(image))
        durations.append(image.info.get("duration", 0))
    image.seek(0)
    if (loop := image.info.get("loop")) is not None:
        options["loop"] = loop
    if job.fmt.plugin != "TIFF":
        options["duration"] = durations
    copies[0].save(path, save_all=True, append_images=copies[1:], **options)


def _encoder_options(image: Image.Image, job: _Job) -> dict[str, Any]:
    """Settings that keep the look: JPEG's own quantisation tables and subsampling, lossless
    where the upload was lossless, and a high quality elsewhere."""
    from PIL import JpegImagePlugin  # noqa: PLC0415

    plugin = job.fmt.plugin
    options: dict[str, Any] = {"format": "JPEG" if plugin == "JPEG" else plugin}
    if plugin == "JPEG":
        options["qtables"] = getattr(image, "quantization", None) or None
        options["progressive"] = bool(image.info.get("progressive"))
        if (sampling := JpegImagePlugin.get_sampling(image)) >= 0:
            options["subsampling"] = sampling
        if options["qtables"] is None:
            options["quality"] = 92
    elif plugin == "WEBP":
        options.update(lossless=job.lossless, quality=90)
    elif plugin in ("HEIF", "AVIF"):
        options["quality"] = 90
        if plugin == "HEIF":
            # libheif runs x265 at its "slow" preset; x265's own default, "medium", takes half
            # the CPU (10 s -> 4.4 s for a 5 Mpx phone photo) for a copy within 2% of the size
            # and as close to the decoded pixels (PSNR within 0.3 dB either way, tests/realworld).
            options["enc_params"] = {"preset": HEIF_PRESET}
    elif plugin == "TIFF":
        options["compression"] = "tiff_deflate"
    elif plugin == "ICO":
        options["sizes"] = sorted(image.info.get("sizes", {image.size}))
    return options


def _orientation(image: Image.Image) -> Image.Transpose | None:
    """The transpose that shows the picture upright, from EXIF orientation; None if upright."""
    from PIL import Image  # noqa: PLC0415

    name = _UPRIGHT.get(image.getexif().get(_ORIENTATION, 1))
    return None if name is None else Image.Transpose[name]


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation to the pixels, since the tag that carried it is dropped.

    ``ImageOps.exif_transpose`` does the same but also rewrites the EXIF it keeps, which
    parses every IFD; only IFD0 is read here.
    """
    method = _orientation(image)
    return image if method is None else image.transpose(method)


def _bare(frame: Image.Image) -> Image.Image:
    """A copy of the pixels (and palette) whose ``info`` keeps only transparency."""
    copy = frame.copy()
    transparency = frame.info.get("transparency")
    copy.info = {} if transparency is None else {"transparency": transparency}
    return copy
