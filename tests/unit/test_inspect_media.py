"""Audio and video inspection: every sample, benign or hostile, is encoded here with PyAV."""

from __future__ import annotations

import dataclasses
import io
import random
import re
import struct
import zipfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from filegate.domain import InspectionLimits
from filegate.inspect import media
from filegate.inspect.base import InspectorReport, Sample
from filegate.inspect.media import CODES, MEDIA_TYPES, inspect_media
from filegate.inspect.signatures import zip_signature_at
from filegate.inspect.sniff import detect_type

# --- builders ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What to encode: a muxer, its codecs and the type libmagic gives the result."""

    fmt: str
    video: str | None
    audio: str | None
    detected: str
    extension: str
    seconds: float = 1.0
    attachment: bool = False
    cover: bool = False


def encode(path: Path, recipe: Recipe) -> Path:
    av.logging.set_level(av.logging.PANIC)
    with av.open(str(path), "w", format=recipe.fmt) as out:
        video = _video_stream(out, recipe.video) if recipe.video else None
        audio = _audio_stream(out, recipe.audio) if recipe.audio else None
        cover = _cover_stream(out) if recipe.cover else None
        if recipe.attachment:
            out.add_attachment("font.ttf", "font/ttf", b"\x00\x01\x00\x00" + bytes(200))
        out.start_encoding()
        if cover is not None:
            _mux_frames(out, cover, [_picture(32, 32, 128, "yuvj420p")])
        if video is not None:
            frames = [_picture(64, 48, 20 * i) for i in range(round(recipe.seconds * 10))]
            _mux_frames(out, video, frames)
        if audio is not None:
            _mux_silence(out, audio, recipe.seconds)
    return path


def _video_stream(out: av.container.OutputContainer, codec: str) -> av.VideoStream:
    stream = out.add_stream(codec, rate=10)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    return stream


def _audio_stream(out: av.container.OutputContainer, codec: str) -> av.AudioStream:
    rate = 48_000 if codec == "libopus" else 44_100  # Opus knows no 44.1 kHz
    stream = out.add_stream(codec, rate=rate)
    assert isinstance(stream, av.AudioStream)
    return stream


def _cover_stream(out: av.container.OutputContainer) -> av.VideoStream:
    stream = out.add_stream("mjpeg")
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
    stream.time_base = Fraction(1, 90_000)
    stream.disposition = av.stream.Disposition.attached_pic
    return stream


def _picture(width: int, height: int, shade: int, fmt: str = "yuv420p") -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "gray")
    (plane,) = frame.planes
    row = bytes((shade + x) % 256 for x in range(plane.line_size))  # a gradient to encode
    plane.update(row * (plane.buffer_size // plane.line_size))
    return frame.reformat(format=fmt)


def _mux_frames(
    out: av.container.OutputContainer, stream: av.VideoStream, frames: list[av.VideoFrame]
) -> None:
    for index, frame in enumerate(frames):
        frame.pts = index
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _mux_silence(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    rate = stream.rate
    step = stream.frame_size or 1024
    for pts in range(0, int(seconds * rate), step):
        frame = av.AudioFrame(format=stream.format.name, layout=stream.layout.name, samples=step)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = rate, pts
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("shell.php", "<?php system($_GET['c']); ?>" * 4)
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, struct.pack(">I", version << 24) + payload)


def meta_with_item(item_type: bytes, content_type: bytes = b"") -> bytes:
    """A top-level HEIF-style ``meta`` box declaring one item (infe version 2)."""
    strings = b"payload\0" + (content_type + b"\0" if item_type == b"mime" else b"")
    infe = full_box(b"infe", struct.pack(">HH4s", 1, 0, item_type) + strings, version=2)
    iinf = full_box(b"iinf", struct.pack(">H", 1) + infe)
    hdlr = full_box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 13)
    return full_box(b"meta", hdlr + iinf)


RECIPES = {
    "mp4": Recipe("mp4", "libx264", "aac", "video/mp4", "mp4"),
    "mov": Recipe("mov", "mpeg4", "aac", "video/quicktime", "mov"),
    "m4a": Recipe("ipod", None, "aac", "audio/x-m4a", "m4a"),
    "mkv": Recipe("matroska", "mpeg4", "aac", "video/x-matroska", "mkv"),
    "mka": Recipe("matroska", None, "aac", "video/x-matroska", "mka"),
    "webm": Recipe("webm", "libvpx", "libopus", "video/webm", "webm"),
    "mp3": Recipe("mp3", None, "libmp3lame", "audio/mpeg", "mp3"),
    "mp3-cover": Recipe("mp3", None, "libmp3lame", "audio/mpeg", "mp3", cover=True),
    "opus": Recipe("ogg", None, "libopus", "audio/ogg", "opus"),
    "ogg-flac": Recipe("ogg", None, "flac", "audio/ogg", "ogg"),
    "wav": Recipe("wav", None, "pcm_s16le", "audio/x-wav", "wav"),
    "flac": Recipe("flac", None, "flac", "audio/flac", "flac"),
    "mkv-attachment": Recipe(
        "matroska", "mpeg4", "aac", "video/x-matroska", "mkv", attachment=True
    ),
    "mp4-3s": Recipe("mp4", "libx264", "aac", "video/mp4", "mp4", seconds=3.0),
}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each recipe encoded once for the whole module (a few hundred milliseconds)."""
    folder = tmp_path_factory.mktemp("media")
    return {
        name: encode(folder / f"{name}.{recipe.extension}", recipe)
        for name, recipe in RECIPES.items()
    }


def inspect(
    path: Path, detected: str, limits: InspectionLimits | None = None, **caps: int
) -> InspectorReport:
    limits = dataclasses.replace(limits or InspectionLimits(), **caps)
    sample = Sample(
        path=str(path), size=path.stat().st_size, detected_type=detected, extension=None
    )
    return inspect_media(sample, limits)


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


def variant(
    samples: dict[str, Path], name: str, tmp_path: Path, edit: Callable[[bytes], bytes]
) -> Path:
    path = tmp_path / samples[name].name
    path.write_bytes(edit(samples[name].read_bytes()))
    return path


# --- benign -----------------------------------------------------------------------------------


BENIGN = [name for name in RECIPES if name != "mkv-attachment"]


@pytest.mark.parametrize("name", BENIGN)
def test_benign_media_has_no_findings(samples: dict[str, Path], name: str) -> None:
    assert inspect(samples[name], RECIPES[name].detected).findings == ()


@pytest.mark.parametrize("name", BENIGN)
def test_libmagic_names_every_format_a_handled_type(samples: dict[str, Path], name: str) -> None:
    assert detect_type(samples[name]) in MEDIA_TYPES


def test_cover_art_is_not_an_attachment(samples: dict[str, Path]) -> None:
    with av.open(str(samples["mp3-cover"])) as container:
        kinds = sorted(stream.type for stream in container.streams)
    assert kinds == ["audio", "video"]  # the cover really is there
    assert inspect(samples["mp3-cover"], "audio/mpeg").findings == ()


@pytest.mark.parametrize("padding", [1, 4096])
def test_zero_padding_after_the_end_is_not_trailing_data(
    samples: dict[str, Path], tmp_path: Path, padding: int
) -> None:
    path = variant(samples, "wav", tmp_path, lambda data: data + bytes(padding))
    assert inspect(path, "audio/x-wav").findings == ()


# --- hostile ----------------------------------------------------------------------------------


def _zip_in_free_box(data: bytes) -> bytes:
    """A zip inside a ``free`` box between ftyp and the rest: nothing follows the container."""
    ftyp_end = struct.unpack_from(">I", data, 0)[0]
    free = box(b"free", zip_bytes())
    # Chunk offsets in moov point into mdat, so they move by the box's size.
    patched = _shift_chunk_offsets(data, len(free))
    return patched[:ftyp_end] + free + patched[ftyp_end:]


def _shift_chunk_offsets(data: bytes, by: int) -> bytes:
    out = bytearray(data)
    for found in re.finditer(rb"stco", data):
        count = struct.unpack_from(">I", data, found.end() + 4)[0]
        first = found.end() + 8
        for offset in range(first, first + 4 * count, 4):
            struct.pack_into(">I", out, offset, struct.unpack_from(">I", data, offset)[0] + by)
    return bytes(out)


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A benign sample, an edit that makes it hostile, and the codes that must follow."""

    sample: str
    detected: str
    edit: Callable[[bytes], bytes]
    expected: frozenset[str]


def _appended(extra: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data + extra


def _halved(data: bytes) -> bytes:
    return data[: len(data) // 2]


POLYGLOT_TRAILING = frozenset({"media_polyglot", "media_trailing_data"})
HOSTILE = {
    "zip-after-mp4": Hostile("mp4", "video/mp4", _appended(zip_bytes()), POLYGLOT_TRAILING),
    "script-after-mp3": Hostile(
        "mp3", "audio/mpeg", _appended(b"<SCRIPT>alert(1)</script>"), frozenset({"media_polyglot"})
    ),
    "zip-in-free-box": Hostile("mp4", "video/mp4", _zip_in_free_box, frozenset({"media_polyglot"})),
    "zip-item-in-meta": Hostile(
        "mp4",
        "video/mp4",
        _appended(meta_with_item(b"mime", b"application/zip")),
        frozenset({"media_attachment"}),
    ),
    "uri-item-in-meta": Hostile(
        "mp4", "video/mp4", _appended(meta_with_item(b"uri ")), frozenset({"media_attachment"})
    ),
    "mkv-as-mp4": Hostile(
        "mkv", "video/mp4", lambda data: data, frozenset({"media_container_mismatch"})
    ),
    "mp3-as-mkv": Hostile(
        "mp3", "video/x-matroska", lambda data: data, frozenset({"media_container_mismatch"})
    ),
    "exe-after-wav": Hostile(
        "wav", "audio/x-wav", _appended(b"\0\0MZ\x90\0"), frozenset({"media_trailing_data"})
    ),
    "bytes-after-mkv": Hostile(
        "mkv", "video/x-matroska", _appended(b"payload"), frozenset({"media_trailing_data"})
    ),
    "bytes-after-ogg": Hostile(
        "opus", "audio/ogg", _appended(b"payload"), frozenset({"media_trailing_data"})
    ),
    "php-after-flac": Hostile(
        "flac", "audio/flac", _appended(b"<?PHP echo 1; ?>"), frozenset({"media_polyglot"})
    ),
    "svg-after-wav": Hostile(
        "wav", "audio/x-wav", _appended(b"<svg onload=alert(1)>"), POLYGLOT_TRAILING
    ),
    "half-an-mp4": Hostile("mp4", "video/mp4", _halved, frozenset({"media_invalid"})),
    "half-an-mkv": Hostile("mkv", "video/x-matroska", _halved, frozenset({"media_invalid"})),
    "random-as-mp3": Hostile(
        "mp3",
        "audio/mpeg",
        lambda data: random.Random(7).randbytes(4096),
        frozenset({"media_invalid"}),
    ),
    "empty-m4a": Hostile("mp4", "audio/x-m4a", lambda data: b"", frozenset({"media_invalid"})),
}


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_media_is_reported(samples: dict[str, Path], tmp_path: Path, case: Hostile) -> None:
    path = variant(samples, case.sample, tmp_path, case.edit)
    assert codes(inspect(path, case.detected)) == case.expected


def test_a_zip_in_a_free_box_still_demuxes(samples: dict[str, Path], tmp_path: Path) -> None:
    """The polyglot above is a valid MP4, so only the byte scan can catch it."""
    path = variant(samples, "mp4", tmp_path, _zip_in_free_box)
    with av.open(str(path)) as container:
        assert sum(1 for packet in container.demux() if packet.size) > 10


def test_matroska_attachment_is_reported_by_stream(samples: dict[str, Path]) -> None:
    findings = inspect(samples["mkv-attachment"], "video/x-matroska").findings
    assert [(f.code, f.where) for f in findings] == [("media_attachment", "stream 2")]


def test_picture_items_in_a_meta_box_are_not_attachments(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    path = variant(samples, "mp4", tmp_path, lambda d: d + meta_with_item(b"mime", b"image/png"))
    assert "media_attachment" not in codes(inspect(path, "video/mp4"))


def test_trailing_data_says_where_it_starts(samples: dict[str, Path], tmp_path: Path) -> None:
    size = samples["wav"].stat().st_size
    path = variant(samples, "wav", tmp_path, lambda d: d + b"x" * 100)
    (finding,) = inspect(path, "audio/x-wav").findings
    assert finding.where == f"byte {size}"
    assert "100 bytes" in finding.message


def test_a_type_this_inspector_does_not_handle(samples: dict[str, Path]) -> None:
    assert codes(inspect(samples["mp4"], "image/png")) == {"media_invalid"}


def test_exception_text_never_reaches_the_message(tmp_path: Path) -> None:
    path = tmp_path / "secret-name.mp3"
    path.write_bytes(b"ID3\x04\0\0\0\0\0\x05" + random.Random(3).randbytes(2000))
    (finding,) = inspect(path, "audio/mpeg").findings
    assert finding.code == "media_invalid"
    assert "secret" not in finding.message


# --- caps -------------------------------------------------------------------------------------


CAPS = [
    ("mp4", {"max_media_streams": 1}, "media_too_many_streams"),
    ("mp4-3s", {"max_media_seconds": 1}, "media_too_long"),
    ("mp3", {"max_media_seconds": 0}, "media_too_long"),
    ("mp4", {"max_pixels": 64 * 48 - 1}, "media_too_many_pixels"),
    ("mp3-cover", {"max_pixels": 32 * 32 - 1}, "media_too_many_pixels"),
]


@pytest.mark.parametrize(("name", "caps", "expected"), CAPS)
def test_caps(samples: dict[str, Path], name: str, caps: dict[str, int], expected: str) -> None:
    assert codes(inspect(samples[name], RECIPES[name].detected, **caps)) == {expected}


def test_caps_at_the_limit_pass(samples: dict[str, Path]) -> None:
    outcome = inspect(samples["mp4"], "video/mp4", max_media_streams=2, max_pixels=64 * 48)
    assert outcome.findings == ()


def test_packet_times_are_checked_when_headers_say_nothing(
    samples: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header can lie about the duration; the packets' own timestamps still count."""
    monkeypatch.setattr(media, "_declared_seconds", lambda container: 0.0)
    findings = inspect(samples["mp4-3s"], "video/mp4", max_media_seconds=1).findings
    assert [f.code for f in findings] == ["media_too_long"]
    assert findings[0].where is not None
    assert findings[0].where.startswith("stream ")


# --- the contract -----------------------------------------------------------------------------


def test_codes_are_exactly_the_codes_emitted() -> None:
    source = Path(media.__file__).read_text(encoding="utf-8")
    emitted = set(re.findall(r'Finding\(\s*"(\w+)"', source))
    assert emitted == set(CODES)


def test_media_types_cover_the_names_detectors_use() -> None:
    expected = {
        "video/mp4", "video/quicktime", "audio/x-m4a", "audio/mp4", "video/webm",
        "video/x-matroska", "audio/x-matroska", "audio/mpeg", "audio/ogg", "application/ogg",
        "audio/opus", "video/ogg", "audio/x-wav", "audio/wav", "audio/vnd.wave", "audio/flac",
        "audio/x-flac",
    }  # fmt: skip
    assert expected <= MEDIA_TYPES


def test_zip_signature_helper() -> None:
    archive = zip_bytes()
    assert zip_signature_at(b"abc" + archive) == 3
    assert zip_signature_at(archive[archive.rindex(b"PK\x05\x06") :]) == 0
    assert zip_signature_at(b"PK\x03\x04" + b"\xff" * 26) is None  # no plausible version


def test_never_raises_on_mutations(samples: dict[str, Path], tmp_path: Path) -> None:
    """Hundreds of damaged MP4s: each gives findings with known codes, never an exception."""
    original = samples["mp4"].read_bytes()
    rng = random.Random(20261201)
    path = tmp_path / "mutant.mp4"
    for _ in range(300):
        data = bytearray(original)
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)) :]
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        outcome = inspect(path, "video/mp4")
        assert codes(outcome) <= set(CODES)
