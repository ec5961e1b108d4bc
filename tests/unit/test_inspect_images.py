"""Raster image inspection: every sample, benign or hostile, is built here in code."""

from __future__ import annotations

import io
import resource
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from filegate.domain import SanitizeMode, SanitizeRules
from filegate.inspect import images
from filegate.inspect.base import InspectorReport, Limits, Sample
from filegate.inspect.images import CODES, INFORMATIONAL_CODES, inspect_image

MIME = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "ICO": "image/vnd.microsoft.icon",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}
EXTENSION = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}


# --- builders ---------------------------------------------------------------------------------


def picture(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
    """A small image with some structure, so encoders have real work to do."""
    image = Image.linear_gradient("L").resize(size)
    flipped = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return Image.merge("RGB", (image, flipped, image)).convert(mode)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    if fmt == "HEIF":
        images._register_heif()  # the inspector loads libheif on first use; so does this
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_flood_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG header that promises 10 Gpx, in well under 100 bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + png_chunk(b"IEND", b"")
    )


def png_with_text(key: bytes, text: bytes) -> bytes:
    """A PNG with a tEXt chunk spliced in before IEND."""
    data = encode(picture(), "PNG")
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", key + b"\x00" + text) + data[iend:]


def tiny_gif(frames: int, comment: bytes = b"") -> bytes:
    """A 1x1 GIF with ``frames`` image descriptors, written by hand (Pillow merges duplicates)."""
    out = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    if comment:
        out += b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    # LZW, minimum code size 2: clear, index 0, end of information.
    return out + (descriptor + b"\x02\x02\x44\x01\x00") * frames + b"\x3b"


def animation(fmt: str, frames: int, size: tuple[int, int] = (16, 16)) -> bytes:
    colours = [(255 * (i % 2), 40 * i % 256, 90) for i in range(frames)]
    images = [Image.new("RGB", size, colour) for colour in colours]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=50, loop=0)


def exif_block(orientation: int | None = None) -> bytes:
    """EXIF with a camera maker, a GPS position and, if given, an orientation."""
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif.tobytes()


def jpeg_with_exif(orientation: int | None = None) -> bytes:
    return encode(picture((40, 20)), "JPEG", exif=exif_block(orientation), quality=90)


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "nothing to see")
    return out.getvalue()


def mpo() -> bytes:
    first, second = picture(), picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return encode(first, "MPO", save_all=True, append_images=[second])


# --- running the inspector --------------------------------------------------------------------


def run(
    tmp_path: Path, data: bytes, mime: str, limits: Limits | None = None, *, sanitize: bool = True
) -> InspectorReport:
    source = tmp_path / "upload"
    source.write_bytes(data)
    sample = Sample(
        path=str(source),
        size=len(data),
        detected_type=mime,
        extension=None,
        sanitized_path=str(tmp_path / "clean") if sanitize else None,
    )
    return inspect_image(sample, limits or Limits())


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


def clean_copy(tmp_path: Path) -> Image.Image:
    image = Image.open(tmp_path / "clean")
    image.load()
    return image


def exif_thumbnail_jpeg() -> bytes:
    """EXIF carrying a whole JPEG (as cameras carry a thumbnail), whose EOI is not the end."""
    exif = Image.Exif()
    exif[0x927C] = encode(picture((8, 8)), "JPEG")  # MakerNote: opaque bytes
    return encode(picture(), "JPEG", exif=exif.tobytes())


def gif_frame_outgrowing_canvas(width: int, height: int) -> bytes:
    """A 1x1 canvas whose only frame claims ``width`` x ``height``: Pillow grows to fit it."""
    out = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return out + descriptor + b"\x02\x02\x44\x01\x00" + b"\x3b"


def png_palette_with_transparency() -> bytes:
    image = picture().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


# --- the table --------------------------------------------------------------------------------

NONE: set[str] = set()
METADATA = {"image_metadata_removed"}
TRAILING = {"image_trailing_data"}
TRUNCATED = {"image_truncated"}

CASES: list[tuple[str, Callable[[], bytes], str, Limits | None, set[str]]] = [
    # (id, build, detected type, limits or None for the defaults, exact codes)
    ("png", lambda: encode(picture(), "PNG"), "image/png", None, NONE),
    ("png-rgba", lambda: encode(picture(mode="RGBA"), "PNG"), "image/png", None, NONE),
    ("png-palette-transparency", png_palette_with_transparency, "image/png", None, NONE),
    ("jpeg", lambda: encode(picture(), "JPEG"), "image/jpeg", None, NONE),
    ("jpeg-grey", lambda: encode(picture(mode="L"), "JPEG"), "image/jpeg", None, NONE),
    (
        "jpeg-progressive",
        lambda: encode(picture(), "JPEG", progressive=True),
        "image/jpeg",
        None,
        NONE,
    ),
    (
        "jpeg-restart-markers",
        lambda: encode(picture((64, 64)), "JPEG", restart_marker_blocks=1),
        "image/jpeg",
        None,
        NONE,
    ),
    # The copy is a plain JPEG of the first picture; the second is reported as left out.
    ("jpeg-mpo-two-pictures", mpo, "image/jpeg", None, {"image_metadata_removed"}),
    ("gif", lambda: encode(picture(), "GIF"), "image/gif", None, NONE),
    ("webp", lambda: encode(picture(), "WEBP"), "image/webp", None, NONE),
    ("webp-lossless", lambda: encode(picture(), "WEBP", lossless=True), "image/webp", None, NONE),
    ("gif-animated", lambda: animation("GIF", 5), "image/gif", None, NONE),
    ("webp-animated", lambda: animation("WEBP", 5), "image/webp", None, NONE),
    ("png-animated", lambda: animation("PNG", 5), "image/png", None, NONE),
    # Metadata: informational, the copy leaves it out.
    ("jpeg-exif-gps", jpeg_with_exif, "image/jpeg", None, METADATA),
    ("jpeg-exif-thumbnail", exif_thumbnail_jpeg, "image/jpeg", None, METADATA),
    (
        "jpeg-comment",
        lambda: encode(picture(), "JPEG", comment=b"shot on"),
        "image/jpeg",
        None,
        METADATA,
    ),
    ("png-text-chunk", lambda: png_with_text(b"Author", b"someone"), "image/png", None, METADATA),
    (
        "png-icc-profile",
        lambda: encode(picture(), "PNG", icc_profile=b"not really a profile"),
        "image/png",
        None,
        METADATA,
    ),
    (
        "webp-exif-gps",
        lambda: encode(picture(), "WEBP", exif=exif_block()),
        "image/webp",
        None,
        METADATA,
    ),
    # Caps, before any decoding.
    ("pixel-flood", pixel_flood_png, "image/png", None, {"image_too_many_pixels"}),
    (
        "pixel-flood-own-cap",
        lambda: pixel_flood_png(2_000, 2_000),
        "image/png",
        Limits(max_pixels=1_000_000),
        {"image_too_many_pixels"},
    ),
    (
        "gif-frame-outgrows-canvas",
        lambda: gif_frame_outgrowing_canvas(200, 200),
        "image/gif",
        Limits(max_pixels=10_000),
        {"image_too_many_pixels"},
    ),
    ("gif-2000-frames", lambda: tiny_gif(2_000), "image/gif", None, {"image_too_many_frames"}),
    (
        "animation-over-decode-budget",
        lambda: animation("GIF", 21, (32, 32)),  # 21 x 1,024 px > 20 x 1,024 px
        "image/gif",
        Limits(max_pixels=1_024),
        {"image_too_many_pixels"},
    ),
    # Broken data.
    (
        "png-truncated",
        lambda: encode(picture((200, 200)), "PNG")[:300],
        "image/png",
        None,
        TRUNCATED,
    ),
    ("png-without-iend", lambda: encode(picture(), "PNG")[:-12], "image/png", None, TRUNCATED),
    (
        "jpeg-truncated",
        lambda: encode(picture((200, 200)), "JPEG")[:500],
        "image/jpeg",
        None,
        TRUNCATED,
    ),
    (
        "gif-truncated",
        lambda: encode(picture((200, 200)), "GIF")[:500],
        "image/gif",
        None,
        TRUNCATED,
    ),
    (
        "webp-truncated",
        lambda: encode(picture((200, 200)), "WEBP")[:100],
        "image/webp",
        None,
        TRUNCATED,
    ),
    ("empty", lambda: b"", "image/png", None, {"image_invalid"}),
    (
        "jpeg-said-to-be-png",
        lambda: encode(picture(), "JPEG"),
        "image/png",
        None,
        {"image_invalid"},
    ),
    (
        "png-with-bad-header",
        lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "image/png",
        None,
        {"image_invalid"},
    ),
    (
        "type-not-handled",
        lambda: encode(picture(), "PPM"),
        "image/x-portable-pixmap",
        None,
        {"image_invalid"},
    ),
    # Payloads riding along.
    ("png-after-iend", lambda: encode(picture(), "PNG") + b"payload", "image/png", None, TRAILING),
    ("png-zero-padding", lambda: encode(picture(), "PNG") + bytes(16), "image/png", None, NONE),
    (
        "jpeg-after-eoi",
        lambda: encode(picture(), "JPEG") + b"payload",
        "image/jpeg",
        None,
        TRAILING,
    ),
    (
        "gif-after-trailer",
        lambda: encode(picture(), "GIF") + b"payload",
        "image/gif",
        None,
        TRAILING,
    ),
    (
        "webp-beyond-riff",
        lambda: encode(picture(), "WEBP") + b"payload",
        "image/webp",
        None,
        TRAILING,
    ),
    (
        "png-plus-zip",
        lambda: encode(picture(), "PNG") + zip_bytes(),
        "image/png",
        None,
        {"image_trailing_data", "image_polyglot"},
    ),
    (
        "png-plus-pdf",
        lambda: encode(picture(), "PNG") + b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF\n",
        "image/png",
        None,
        {"image_trailing_data", "image_polyglot"},
    ),
    (
        "zip-header-in-text-chunk",
        lambda: png_with_text(b"Comment", zip_bytes()[:40]),
        "image/png",
        None,
        {"image_polyglot", "image_metadata_removed"},
    ),
    (
        "jpeg-plus-php",
        lambda: encode(picture(), "JPEG") + b"<?php system($_GET['c']); ?>",
        "image/jpeg",
        None,
        {"image_trailing_data", "image_embedded_markup"},
    ),
    (
        "gif-script-in-comment",
        lambda: tiny_gif(1, comment=b"<script>alert(document.domain)</script>"),
        "image/gif",
        None,
        {"image_embedded_markup", "image_metadata_removed"},
    ),
    (
        "markup-across-a-scan-window-edge",
        lambda: encode(picture(), "PNG").ljust(4 * 1024 * 1024 - 3, b"\0") + b"<ScRiPt>",
        "image/png",
        None,
        {"image_trailing_data", "image_embedded_markup"},
    ),
    (
        "png-svg-in-text-chunk",
        lambda: png_with_text(b"Comment", b"<svg onload=alert(1)>"),
        "image/png",
        None,
        {"image_embedded_markup", "image_metadata_removed"},
    ),
]


@pytest.mark.parametrize(
    ("build", "mime", "limits", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_findings(
    tmp_path: Path,
    build: Callable[[], bytes],
    mime: str,
    limits: Limits | None,
    expected: set[str],
) -> None:
    outcome = run(tmp_path, build(), mime, limits)
    assert codes(outcome) == expected
    assert codes(outcome) <= CODES.keys()


REFUSED = {"image_too_many_pixels", "image_too_many_frames", "image_invalid"}


@pytest.mark.parametrize(
    ("build", "mime", "limits", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_copy_is_clean(
    tmp_path: Path,
    build: Callable[[], bytes],
    mime: str,
    limits: Limits | None,
    expected: set[str],
) -> None:
    """Whatever was found, a copy (if any) decodes and has nothing left to find."""
    outcome = run(tmp_path, build(), mime, limits)
    if expected & REFUSED:
        assert not outcome.sanitized
        assert not (tmp_path / "clean").exists()
        return
    if not outcome.sanitized:
        assert expected == TRUNCATED
        return
    assert outcome.sanitized_type == mime
    copy = Sample(str(tmp_path / "clean"), 0, mime, None)
    assert inspect_image(copy, limits or Limits()).findings == ()


# --- what the copy keeps and what it leaves out -----------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_benign_copy_has_the_same_size_and_format(tmp_path: Path, fmt: str) -> None:
    outcome = run(tmp_path, encode(picture((37, 23)), fmt), MIME[fmt])
    assert outcome == InspectorReport((), True, MIME[fmt], changes=("re-encoded",))
    with clean_copy(tmp_path) as copy:
        assert (copy.format, copy.size) == (fmt, (37, 23))


def test_exif_and_gps_are_left_out(tmp_path: Path) -> None:
    outcome = run(tmp_path, jpeg_with_exif(), "image/jpeg")
    assert [f.message for f in outcome.findings] == ["left out of the copy: EXIF"]
    with clean_copy(tmp_path) as copy:
        assert "exif" not in copy.info
        assert dict(copy.getexif()) == {}
        assert b"Camera Maker" not in (tmp_path / "clean").read_bytes()


def test_exif_orientation_is_applied_before_it_is_dropped(tmp_path: Path) -> None:
    run(tmp_path, jpeg_with_exif(orientation=6), "image/jpeg")  # 6: rotate 90 degrees
    with clean_copy(tmp_path) as copy:
        assert copy.size == (20, 40)
        assert copy.getexif().get(0x0112) is None


def test_text_chunks_are_left_out(tmp_path: Path) -> None:
    run(tmp_path, png_with_text(b"Author", b"someone"), "image/png")
    with clean_copy(tmp_path) as copy:
        assert getattr(copy, "text", None) == {}
        assert b"someone" not in (tmp_path / "clean").read_bytes()


def test_invalid_icc_profile_and_comments_are_left_out(tmp_path: Path) -> None:
    data = encode(picture(), "JPEG", icc_profile=b"opaque profile", comment=b"shot on")
    outcome = run(tmp_path, data, "image/jpeg")
    assert [f.message for f in outcome.findings] == [
        "left out of the copy: an invalid ICC profile, comments"
    ]
    with clean_copy(tmp_path) as copy:
        assert copy.info.keys().isdisjoint({"icc_profile", "comment", "exif", "xmp"})


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_a_valid_icc_profile_is_kept(tmp_path: Path, fmt: str) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(picture(), fmt, icc_profile=profile)
    outcome = run(tmp_path, data, MIME[fmt])
    assert "ICC colour profile kept" in outcome.changes
    with clean_copy(tmp_path) as copy:
        kept = ImageCms.ImageCmsProfile(io.BytesIO(copy.info["icc_profile"]))
        assert ImageCms.getProfileDescription(kept).strip() == "sRGB built-in"


def test_gif_comment_is_left_out(tmp_path: Path) -> None:
    run(tmp_path, tiny_gif(1, comment=b"<script>alert(1)</script>"), "image/gif")
    assert b"<script>" not in (tmp_path / "clean").read_bytes()


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_keeps_its_frames(tmp_path: Path, fmt: str) -> None:
    outcome = run(tmp_path, animation(fmt, 4), MIME[fmt])
    assert outcome.sanitized
    with clean_copy(tmp_path) as copy:
        assert getattr(copy, "n_frames", 1) == 4


def test_animation_too_big_to_hold_keeps_its_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 frames of 1,024 px: each fits, but 10 frames held at once are over the budget.
    monkeypatch.setattr(images, "COPY_BYTES", 5_000)
    outcome = run(tmp_path, animation("GIF", 10, (32, 32)), "image/gif")
    assert codes(outcome) == {"image_frames_dropped"}
    assert outcome.sanitized
    with clean_copy(tmp_path) as copy:
        assert getattr(copy, "n_frames", 1) == 1


def test_lossless_webp_stays_lossless(tmp_path: Path) -> None:
    original = picture()
    run(tmp_path, encode(original, "WEBP", lossless=True), "image/webp")
    with clean_copy(tmp_path) as copy:
        assert copy.convert("RGB").tobytes() == original.tobytes()


def test_no_copy_unless_asked(tmp_path: Path) -> None:
    outcome = run(tmp_path, jpeg_with_exif(), "image/jpeg", sanitize=False)
    assert outcome == InspectorReport()  # nothing was removed, so nothing is reported
    assert not (tmp_path / "clean").exists()


def test_copy_that_cannot_be_written_is_a_finding(tmp_path: Path) -> None:
    data = encode(picture(), "PNG")
    (tmp_path / "upload").write_bytes(data)
    sample = Sample(
        str(tmp_path / "upload"), len(data), "image/png", "png", str(tmp_path / "no" / "copy")
    )
    outcome = inspect_image(sample, Limits())
    assert codes(outcome) == {"image_sanitize_failed"}
    assert not outcome.sanitized


# --- bombs ------------------------------------------------------------------------------------


def test_pixel_flood_is_refused_fast_in_bounded_memory(tmp_path: Path) -> None:
    data = pixel_flood_png()
    assert len(data) < 100
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome = run(tmp_path, data, "image/png")
    elapsed = time.perf_counter() - started
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert codes(outcome) == {"image_too_many_pixels"}
    assert elapsed < 2.0  # measured: well under a millisecond
    assert grown_kib < 50 * 1024  # 10 Gpx of RGB would be 30 GB


def test_own_caps_hold_when_pillows_guard_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert codes(run(tmp_path, pixel_flood_png(), "image/png")) == {"image_too_many_pixels"}
    gif = gif_frame_outgrowing_canvas(20_000, 20_000)
    assert codes(run(tmp_path, gif, "image/gif")) == {"image_too_many_pixels"}


def test_frame_cap_is_checked_before_frames_are_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_to_decode(self: Image.Image) -> None:
        raise AssertionError("decoded a frame")

    monkeypatch.setattr(Image.Image, "load", refuse_to_decode)
    assert codes(run(tmp_path, tiny_gif(1_001), "image/gif")) == {"image_too_many_frames"}


# --- hostile bytes never raise ----------------------------------------------------------------

SEEDS = [encode(picture(), fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP")]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.sampled_from(list(enumerate(SEEDS))),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_mutated_images_never_raise(
    tmp_path: Path, seed: tuple[int, bytes], edits: list[tuple[int, int]], cut: int
) -> None:
    index, original = seed
    data = bytearray(original)
    for position, value in edits:
        data[position % len(data)] = value
    mime = MIME[("PNG", "JPEG", "GIF", "WEBP")[index]]
    outcome = run(tmp_path, bytes(data[: max(cut, 8)]), mime)
    assert codes(outcome) <= CODES.keys()


def test_informational_codes_are_codes() -> None:
    assert INFORMATIONAL_CODES.issubset(CODES)


def run_mode(tmp_path: Path, data: bytes, mime: str, mode: SanitizeMode) -> InspectorReport:
    path = tmp_path / "upload"
    path.write_bytes(data)
    sample = Sample(
        str(path),
        len(data),
        mime,
        None,
        sanitized_path=str(tmp_path / "clean"),
        sanitize=SanitizeRules.every(mode),
    )
    return inspect_image(sample, Limits())


def test_when_needed_leaves_an_image_with_nothing_to_remove_alone(tmp_path: Path) -> None:
    outcome = run_mode(tmp_path, encode(picture(), "PNG"), "image/png", SanitizeMode.WHEN_NEEDED)
    assert outcome == InspectorReport()
    assert not (tmp_path / "clean").exists()


@pytest.mark.parametrize(
    ("data", "removed"),
    [
        (lambda: encode(picture(), "PNG", pnginfo=text_chunk()), "removed: text chunks"),
        (jpeg_with_exif, "removed: EXIF"),
        (lambda: jpeg_with_exif(orientation=6), "EXIF orientation applied to the pixels"),
    ],
    ids=["png-text", "jpeg-exif", "jpeg-rotated"],
)
def test_when_needed_rewrites_what_carries_metadata(
    tmp_path: Path, data: Callable[[], bytes], removed: str
) -> None:
    raw = data()
    mime = "image/png" if raw.startswith(b"\x89PNG") else "image/jpeg"
    outcome = run_mode(tmp_path, raw, mime, SanitizeMode.WHEN_NEEDED)
    assert outcome.sanitized
    assert removed in outcome.changes


def test_never_reports_but_writes_nothing(tmp_path: Path) -> None:
    outcome = run_mode(tmp_path, jpeg_with_exif(), "image/jpeg", SanitizeMode.NEVER)
    assert outcome == InspectorReport()
    assert not (tmp_path / "clean").exists()


def test_a_commented_animation_stays_animated(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), (40 * i, 90, 200)) for i in range(6)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], comment=b"a tool")
    outcome = run_mode(tmp_path, data, "image/gif", SanitizeMode.WHEN_NEEDED)
    assert outcome.sanitized
    with clean_copy(tmp_path) as copy:
        assert copy.n_frames == 6


def text_chunk() -> object:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", "a photo editor")
    return info


@pytest.mark.parametrize("fmt", ["TIFF", "BMP", "ICO", "AVIF", "HEIF"])
def test_more_formats_decode_and_copy(tmp_path: Path, fmt: str) -> None:
    outcome = run(tmp_path, encode(picture((32, 32)), fmt), MIME[fmt])
    assert codes(outcome) == set()
    with clean_copy(tmp_path) as copy:
        assert copy.size == (32, 32)


@pytest.mark.parametrize("fmt", ["BMP", "ICO", "AVIF", "HEIF"])
def test_more_formats_with_a_payload_after_them(tmp_path: Path, fmt: str) -> None:
    data = encode(picture((32, 32)), fmt) + b"<?php system($_GET[1]); ?>"
    outcome = run(tmp_path, data, MIME[fmt])
    assert {"image_trailing_data", "image_embedded_markup"} <= codes(outcome)
