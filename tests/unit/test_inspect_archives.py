"""Archive inspection: one table row per benign or malicious shape, every sample built here."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from filegate.domain import Finding
from filegate.inspect.archives import (
    CODES,
    MemberInspector,
    archive_kind,
    inspect_archive,
    is_office_container,
)
from filegate.inspect.base import InspectorReport, Limits, Sample

MB = 1024 * 1024
# Limits under which only the structural rule a row is about can fire.
NO_SIZE_LIMITS = Limits(max_archive_ratio=10**9, max_archive_total=10**15)
LOCAL = struct.Struct("<4s2B4HL2L2H")
CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
END = struct.Struct("<4s4H2LH")

Build = Callable[[Path], Path]


def sample_of(path: Path, depth: int = 0) -> Sample:
    return Sample(
        path=str(path),
        size=path.stat().st_size,
        detected_type="application/octet-stream",
        extension=None,
        depth=depth,
    )


def nested(limits: Limits) -> MemberInspector:
    """A member inspector that recurses into archives, as the pipeline will."""

    def inspect(path: str, name: str, depth: int) -> InspectorReport:
        member = sample_of(Path(path), depth)
        if archive_kind(member) is None:
            return InspectorReport()
        return inspect_archive(member, limits, inspect)

    return inspect


@dataclass
class Recorder:
    """Records (name, content, depth, path) per call and answers with ``findings``."""

    findings: tuple[Finding, ...] = ()
    calls: list[tuple[str, bytes, int, str]] = field(default_factory=list)

    def __call__(self, path: str, name: str, depth: int) -> InspectorReport:
        self.calls.append((name, Path(path).read_bytes(), depth, path))
        return InspectorReport(findings=self.findings)


def codes(outcome: InspectorReport) -> set[str]:
    return {finding.code for finding in outcome.findings}


# --- builders -------------------------------------------------------------------------------


def zip_of(
    tmp: Path,
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    name: str = "a.zip",
    compression: int = zipfile.ZIP_DEFLATED,
    comment: bytes = b"",
) -> Path:
    path = tmp / name
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.comment = comment
        for entry, data in entries:
            archive.writestr(entry, data)
    return path


def tar_of(tmp: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> Path:
    path = tmp / "a.tar"
    with tarfile.open(path, mode) as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def text_files(tmp: Path) -> Path:
    return zip_of(tmp, [("a.txt", b"hello"), ("docs/", b""), ("docs/b.txt", b"world")])


def zip_with(compression: int) -> Build:
    return lambda tmp: zip_of(tmp, [("a.txt", b"hello " * 100)], compression=compression)


def nest(levels: int) -> Build:
    """A text file inside ``levels`` zips."""

    def build(tmp: Path) -> Path:
        path = zip_of(tmp, [("a.txt", b"hello")], name="level0.zip")
        for level in range(1, levels):
            path = zip_of(tmp, [(path.name, path.read_bytes())], name=f"level{level}.zip")
        return path

    return build


def tar_with(mode: str) -> Build:
    return lambda tmp: tar_of(tmp, [(member("a.txt"), b"hello"), (member("b.txt"), b"x")], mode)


Opener = Callable[[Path], io.BufferedIOBase]


def compressed(opener: Opener, data: bytes = b"hello", times: int = 1) -> Build:
    """``data`` written ``times`` over into one compressed stream, never whole in memory."""

    def build(tmp: Path) -> Path:
        path = tmp / "a.compressed"
        with opener(path) as stream:
            for _ in range(times):
                stream.write(data)
        return path

    return build


def gzip_writer(path: Path) -> io.BufferedIOBase:
    return gzip.GzipFile(path, "wb")


def bzip2_writer(path: Path) -> io.BufferedIOBase:
    return bz2.BZ2File(path, "wb")


def xz_writer(path: Path) -> io.BufferedIOBase:
    return lzma.LZMAFile(path, "wb")


def office(tmp: Path) -> Path:
    parts = [("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>")]
    return zip_of(tmp, parts, name="a.docx")


def opendocument(tmp: Path) -> Path:
    mimetype = b"application/vnd.oasis.opendocument.text"
    entries = [("mimetype", mimetype), ("content.xml", b"<office:document-content/>")]
    return zip_of(tmp, entries, name="a.odt", compression=zipfile.ZIP_STORED)


def slip(name: str) -> Build:
    return lambda tmp: zip_of(tmp, [("ok.txt", b"ok"), (name, b"pwned")])


def zip_symlink(tmp: Path) -> Path:
    link = zipfile.ZipInfo("link")
    link.create_system = 3  # Unix, where unzip honours the mode bits
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return zip_of(tmp, [("a.txt", b"a"), (link, b"/etc/passwd")])


def tar_entry(info: tarfile.TarInfo) -> Build:
    return lambda tmp: tar_of(tmp, [(member("a.txt"), b"a"), (info, b"")])


def zeros_zip(size: int) -> Build:
    """``size`` zero bytes deflated into one entry, streamed so they never sit in memory."""

    def build(tmp: Path) -> Path:
        path = tmp / "zeros.zip"
        with (
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
            archive.open("zeros.bin", "w") as entry,
        ):
            for _ in range(size // MB):
                entry.write(bytes(MB))
        return path

    return build


def patched(build: Build, **fields: int) -> Build:
    """``build``'s one-entry zip with header fields (local and central) overwritten."""
    # name: (offset in the local header, offset in the central record, struct format)
    where = {"flags": (6, 8, "<H"), "method": (8, 10, "<H"), "crc": (14, 16, "<L")}
    where |= {"size": (22, 24, "<L")}

    def patch(tmp: Path) -> Path:
        path = build(tmp)
        data = bytearray(path.read_bytes())
        central = END.unpack(data[-END.size :])[6]
        for name, value in fields.items():
            local_at, central_at, fmt = where[name]
            if name != "crc":  # a CRC is patched in the directory only, so the two disagree
                struct.pack_into(fmt, data, local_at, value)
            struct.pack_into(fmt, data, central + central_at, value)
        path.write_bytes(bytes(data))
        return path

    return patch


def local_name_differs(tmp: Path) -> Path:
    path = zip_of(tmp, [("a.txt", b"hello")])
    data = bytearray(path.read_bytes())
    data[LOCAL.size] = ord("b")  # the local header now says b.txt; the directory says a.txt
    path.write_bytes(bytes(data))
    return path


def many_entries(count: int) -> Build:
    def build(tmp: Path) -> Path:
        entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [
            (f"{i}.txt", b"") for i in range(count)
        ]
        return zip_of(tmp, entries, compression=zipfile.ZIP_STORED)

    return build


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def central_record(name: bytes, crc: int, packed: int, size: int, offset: int) -> bytes:
    fields = (b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 0, crc, packed, size, len(name), 0, 0)
    return CENTRAL.pack(*fields, 0, 0, 0, offset) + name


def zip_bytes(body: bytes, records: list[bytes]) -> bytes:
    central = b"".join(records)
    count = len(records)
    return body + central + END.pack(b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)


def shared_header_bomb(entries: int = 800) -> Build:
    """Fifield's simplest overlap: every directory entry points at one local header."""

    def build(tmp: Path) -> Path:
        plain = bytes(MB)
        kernel, crc = deflated(plain), zlib.crc32(plain)
        local = LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 8, 0, 0, crc, len(kernel), MB, 1, 0)
        body = local + b"k" + kernel
        names = [f"{i:04d}".encode() for i in range(entries)]
        records = [central_record(name, crc, len(kernel), MB, 0) for name in names]
        path = tmp / "shared.zip"
        path.write_bytes(zip_bytes(body, records))
        return path

    return build


def quoted_overlap_bomb(entries: int = 450) -> Build:
    """Fifield's overlap, simplified: each entry's data is a stored deflate block that quotes
    the next local header and then runs on into the next entry's data, down to one kernel.

    CRCs are left at 0: the overlap is judged from the headers, so nothing is ever inflated.
    """

    def build(tmp: Path) -> Path:
        kernel = deflated(bytes(MB))
        names = [f"{i:04d}".encode() for i in range(entries)]
        packed, size = len(kernel), MB
        headers: list[bytes] = []
        for name in reversed(names):
            header = LOCAL.pack(b"PK\x03\x04", 20, 0, 0, 8, 0, 0, 0, packed, size, len(name), 0)
            headers.insert(0, header + name)
            packed += 5 + len(header + name)
            size += len(header + name)
        body, records = b"", []
        for index, header in enumerate(headers):
            fields = LOCAL.unpack(header[: LOCAL.size])
            records.append(central_record(names[index], 0, fields[8], fields[9], len(body)))
            body += header
            if index + 1 < len(headers):
                quoted = len(headers[index + 1])
                body += struct.pack("<BHH", 0, quoted, quoted ^ 0xFFFF)  # non-final stored block
        path = tmp / "quoted.zip"
        path.write_bytes(zip_bytes(body + kernel, records))
        return path

    return build


class Zeros(io.RawIOBase):
    """``size`` zero bytes as a stream, for tar members too large to hold."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def zeros_tar_gz(tmp: Path) -> Path:
    path = tmp / "zeros.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = member("zeros.bin")
        info.size = 50 * MB
        archive.addfile(info, Zeros(info.size))
    return path


def huge_pax_header(tmp: Path) -> Path:
    info = member("a.txt")
    info.pax_headers = {"comment": "x" * (2 * MB)}
    return tar_of(tmp, [(info, b"a")], mode="w:")


def truncated(build: Build, keep: int) -> Build:
    def cut(tmp: Path) -> Path:
        path = build(tmp)
        path.write_bytes(path.read_bytes()[:keep])
        return path

    return cut


def damaged_second_tar_header(tmp: Path) -> Path:
    path = tar_of(tmp, [(member("a.txt"), b"a"), (member("b.txt"), b"b")], mode="w:")
    data = bytearray(path.read_bytes())
    data[2 * 512 + 148 : 2 * 512 + 156] = b"zzzzzzz\0"  # the checksum field of the second header
    path.write_bytes(bytes(data))
    return path


def hidden_after_zero_block(tmp: Path) -> Path:
    first = tar_of(tmp, [(member("a.txt"), b"a")], mode="w:").read_bytes()[:1024]
    hidden = tar_of(tmp, [(member("evil.sh"), b"rm -rf ~")], mode="w:").read_bytes()
    path = tmp / "hidden.tar"
    path.write_bytes(first + bytes(512) + hidden)  # GNU tar -i reads on past the zero block
    return path


def raw_bytes(data: bytes) -> Build:
    def build(tmp: Path) -> Path:
        path = tmp / "raw.bin"
        path.write_bytes(data)
        return path

    return build


# --- the table ------------------------------------------------------------------------------

NOT_ALLOWED = Limits(allow_archives=False)
ENCRYPTED_OK = Limits(allow_encrypted_archives=True)

CASES = [
    # benign
    pytest.param(text_files, Limits(), set(), id="zip-text"),
    pytest.param(zip_with(zipfile.ZIP_STORED), Limits(), set(), id="zip-stored"),
    pytest.param(zip_with(zipfile.ZIP_BZIP2), Limits(), set(), id="zip-bzip2"),
    pytest.param(zip_with(zipfile.ZIP_LZMA), Limits(), set(), id="zip-lzma"),
    pytest.param(lambda tmp: zip_of(tmp, []), Limits(), set(), id="zip-empty"),
    pytest.param(
        lambda tmp: zip_of(
            tmp, [("a.txt", b"a")], comment=b"a comment the end record is followed by"
        ),
        Limits(),
        set(),
        id="zip-with-comment",
    ),
    pytest.param(nest(2), Limits(), set(), id="zip-in-zip-within-depth"),
    pytest.param(tar_with("w:"), Limits(), set(), id="tar"),
    pytest.param(tar_with("w:gz"), Limits(), set(), id="tar-gz"),
    pytest.param(tar_with("w:bz2"), Limits(), set(), id="tar-bz2"),
    pytest.param(tar_with("w:xz"), Limits(), set(), id="tar-xz"),
    pytest.param(compressed(gzip_writer), Limits(), set(), id="gzip-file"),
    pytest.param(compressed(bzip2_writer), Limits(), set(), id="bzip2-file"),
    pytest.param(compressed(xz_writer), Limits(), set(), id="xz-file"),
    pytest.param(office, NOT_ALLOWED, set(), id="office-is-not-an-archive"),
    pytest.param(patched(text_files, flags=1), ENCRYPTED_OK, set(), id="encrypted-allowed"),
    # paths and entry types
    pytest.param(slip("../../etc/passwd"), Limits(), {"archive_path_traversal"}, id="zip-slip"),
    pytest.param(slip("/abs"), Limits(), {"archive_path_traversal"}, id="zip-absolute"),
    pytest.param(slip("C:\\x"), Limits(), {"archive_path_traversal"}, id="zip-drive"),
    pytest.param(slip("..\\..\\x"), Limits(), {"archive_path_traversal"}, id="zip-backslash"),
    pytest.param(slip("\uff0e\uff0e/x"), Limits(), {"archive_path_traversal"}, id="zip-fullwidth"),
    pytest.param(slip("a/... /x"), Limits(), {"archive_path_traversal"}, id="zip-windows-dots"),
    pytest.param(
        lambda tmp: tar_of(tmp, [(member("../../etc/passwd"), b"x"), (member("/abs"), b"y")]),
        Limits(),
        {"archive_path_traversal"},
        id="tar-slip",
    ),
    pytest.param(zip_symlink, Limits(), {"archive_link_entry"}, id="zip-symlink"),
    pytest.param(
        tar_entry(member("l", tarfile.SYMTYPE, "/etc/passwd")),
        Limits(),
        {"archive_link_entry"},
        id="tar-symlink",
    ),
    pytest.param(
        tar_entry(member("h", tarfile.LNKTYPE, "a.txt")),
        Limits(),
        {"archive_link_entry"},
        id="tar-hardlink",
    ),
    pytest.param(
        tar_entry(member("d", tarfile.CHRTYPE)), Limits(), {"archive_link_entry"}, id="tar-device"
    ),
    pytest.param(
        tar_entry(member("f", tarfile.FIFOTYPE)), Limits(), {"archive_link_entry"}, id="tar-fifo"
    ),
    pytest.param(
        lambda tmp: zip_of(tmp, [("a.txt", b"1"), ("A.txt", b"2")]),
        Limits(),
        {"archive_duplicate_entry"},
        id="zip-duplicate-case",
    ),
    pytest.param(
        lambda tmp: zip_of(tmp, [("\u00e9.txt", b"1"), ("e\u0301.txt", b"2")]),
        Limits(),
        {"archive_duplicate_entry"},
        id="zip-duplicate-nfc",
    ),
    pytest.param(
        lambda tmp: tar_of(tmp, [(member("a.txt"), b"1"), (member("./A.TXT"), b"2")]),
        Limits(),
        {"archive_duplicate_entry"},
        id="tar-duplicate",
    ),
    pytest.param(patched(text_files, flags=1), Limits(), {"archive_encrypted"}, id="encrypted"),
    # sizes
    pytest.param(zeros_zip(50 * MB), Limits(), {"archive_ratio"}, id="zip-ratio-bomb"),
    pytest.param(
        patched(zeros_zip(50 * MB), size=1000), Limits(), {"archive_ratio"}, id="zip-declared-lie"
    ),
    pytest.param(
        patched(zip_with(zipfile.ZIP_DEFLATED), size=100),
        Limits(),
        {"archive_size_mismatch"},
        id="zip-small-lie",
    ),
    pytest.param(
        patched(zip_with(zipfile.ZIP_BZIP2), size=100),
        Limits(),
        {"archive_size_mismatch"},
        id="zip-bzip2-lie",
    ),
    pytest.param(zeros_tar_gz, Limits(), {"archive_ratio"}, id="tar-gz-ratio-bomb"),
    pytest.param(
        compressed(gzip_writer, bytes(MB), 50), Limits(), {"archive_ratio"}, id="gzip-bomb"
    ),
    pytest.param(
        compressed(bzip2_writer, bytes(MB), 50), Limits(), {"archive_ratio"}, id="bzip2-bomb"
    ),
    pytest.param(
        text_files, Limits(max_archive_total=5), {"archive_too_large"}, id="zip-declared-too-large"
    ),
    pytest.param(
        compressed(gzip_writer, b"x" * 100),
        Limits(max_archive_total=50),
        {"archive_too_large"},
        id="gzip-inflates-too-large",
    ),
    pytest.param(
        tar_with("w:gz"),
        Limits(max_archive_entries=1),
        {"archive_too_many_entries"},
        id="tar-entries",
    ),
    pytest.param(
        many_entries(20),
        Limits(max_archive_entries=19),
        {"archive_too_many_entries"},
        id="zip-entries",
    ),
    pytest.param(
        shared_header_bomb(),
        NO_SIZE_LIMITS,
        {"archive_overlapping_entries", "archive_invalid"},  # and 799 names disagree
        id="overlap-shared-header",
    ),
    pytest.param(
        quoted_overlap_bomb(),
        NO_SIZE_LIMITS,
        {"archive_overlapping_entries"},
        id="overlap-quoted",
    ),
    pytest.param(
        quoted_overlap_bomb(),
        Limits(),
        {"archive_overlapping_entries", "archive_ratio"},
        id="overlap-quoted-default-limits",
    ),
    # nesting and policy
    pytest.param(nest(4), Limits(), {"archive_too_deep"}, id="zip-in-zip-in-zip-in-zip"),
    pytest.param(text_files, NOT_ALLOWED, {"archive_not_allowed"}, id="zip-not-allowed"),
    pytest.param(tar_with("w:gz"), NOT_ALLOWED, {"archive_not_allowed"}, id="tar-not-allowed"),
    pytest.param(
        compressed(gzip_writer), NOT_ALLOWED, {"archive_not_allowed"}, id="gzip-not-allowed"
    ),
    # corrupt
    pytest.param(truncated(text_files, 100), Limits(), {"archive_invalid"}, id="zip-truncated"),
    pytest.param(
        raw_bytes(b"PK\x03\x04" + b"\xff" * 200), Limits(), {"archive_invalid"}, id="zip-garbage"
    ),
    pytest.param(local_name_differs, Limits(), {"archive_invalid"}, id="zip-local-name-differs"),
    pytest.param(patched(text_files, crc=1), Limits(), {"archive_invalid"}, id="zip-bad-crc"),
    pytest.param(
        patched(text_files, method=99), Limits(), {"archive_invalid"}, id="zip-unknown-method"
    ),
    pytest.param(
        truncated(lambda tmp: tar_of(tmp, [(member("a"), b"x" * 5000)], mode="w:"), 3000),
        Limits(),
        {"archive_invalid"},
        id="tar-truncated",
    ),
    pytest.param(damaged_second_tar_header, Limits(), {"archive_invalid"}, id="tar-damaged-header"),
    pytest.param(hidden_after_zero_block, Limits(), {"archive_invalid"}, id="tar-hidden-member"),
    pytest.param(huge_pax_header, Limits(), {"archive_invalid"}, id="tar-huge-pax-header"),
    pytest.param(
        raw_bytes(b"\x1f\x8b\x08" + b"\xff" * 100), Limits(), {"archive_invalid"}, id="gzip-garbage"
    ),
    pytest.param(
        raw_bytes(b"just some text\n"), Limits(), {"archive_invalid"}, id="not-an-archive"
    ),
]


@pytest.mark.parametrize(("build", "limits", "expected"), CASES)
def test_findings(tmp_path: Path, build: Build, limits: Limits, expected: set[str]) -> None:
    sample = sample_of(build(tmp_path))

    outcome = inspect_archive(sample, limits, nested(limits))

    assert codes(outcome) == expected, outcome.findings
    assert codes(outcome) <= set(CODES)


def test_members_are_inspected_in_private_temp_files(tmp_path: Path) -> None:
    recorder = Recorder()

    outcome = inspect_archive(sample_of(text_files(tmp_path), depth=1), Limits(), recorder)

    assert outcome == InspectorReport()
    assert [(name, data, depth) for name, data, depth, _ in recorder.calls] == [
        ("a.txt", b"hello", 2),
        ("docs/b.txt", b"world", 2),
    ]
    for *_, path in recorder.calls:
        assert Path(path).name == "member"  # never the member's own name
        assert not Path(path).parent.exists()  # the private directory is gone


@pytest.mark.parametrize(
    ("build", "members"),
    [
        pytest.param(tar_with("w:xz"), [("a.txt", b"hello"), ("b.txt", b"x")], id="tar-xz"),
        pytest.param(compressed(gzip_writer, b"hi"), [("", b"hi")], id="gzip"),
        pytest.param(compressed(bzip2_writer, b"hi"), [("", b"hi")], id="bzip2"),
    ],
)
def test_stream_members_are_inspected(
    tmp_path: Path, build: Build, members: list[tuple[str, bytes]]
) -> None:
    recorder = Recorder()

    inspect_archive(sample_of(build(tmp_path)), Limits(), recorder)

    assert [(name, data) for name, data, *_ in recorder.calls] == members


@pytest.mark.parametrize(
    "compression",
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
    ids=["stored", "deflate", "bzip2", "lzma"],
)
def test_members_larger_than_one_step_inflate_whole(tmp_path: Path, compression: int) -> None:
    noise = random.Random(0)
    lines = (
        b"%d: request %08x took %d ms\n" % (i, noise.getrandbits(32), i % 97) for i in range(40_000)
    )
    text = b"".join(lines)
    recorder = Recorder()
    path = zip_of(tmp_path, [("log.txt", text)], compression=compression)

    outcome = inspect_archive(sample_of(path), Limits(), recorder)

    assert outcome == InspectorReport()
    assert [(name, data) for name, data, *_ in recorder.calls] == [("log.txt", text)]


def test_member_inspector_errors_propagate(tmp_path: Path) -> None:
    def broken(path: str, name: str, depth: int) -> InspectorReport:
        raise RuntimeError("a bug in the member inspector, not a hostile archive")

    with pytest.raises(RuntimeError, match="a bug"):
        inspect_archive(sample_of(tar_with("w:gz")(tmp_path)), Limits(), broken)


def test_a_member_finding_carries_the_member_name(tmp_path: Path) -> None:
    recorder = Recorder(findings=(Finding("type_not_allowed", "content is x/evil"),))
    path = zip_of(tmp_path, [("dir/evil.bin", b"MZ")])

    outcome = inspect_archive(sample_of(path), Limits(), recorder)

    assert outcome.findings == (
        Finding("type_not_allowed", "dir/evil.bin: content is x/evil", where="dir/evil.bin"),
    )


def test_nested_findings_name_the_whole_path(tmp_path: Path) -> None:
    path = nest(4)(tmp_path)

    outcome = inspect_archive(sample_of(path), Limits(), nested(Limits()))

    (finding,) = outcome.findings
    assert finding.message.startswith("level2.zip: level1.zip: members would sit at depth 3")


def test_member_names_are_defused_in_messages(tmp_path: Path) -> None:
    recorder = Recorder(findings=(Finding("x", "bad"),))
    path = zip_of(tmp_path, [("evil\u202egnp.exe\n", b"MZ")])

    outcome = inspect_archive(sample_of(path), Limits(), recorder)

    assert outcome.findings == (Finding("x", "evil?gnp.exe?: bad", where="evil?gnp.exe?"),)


@pytest.mark.parametrize("build", [office, opendocument], ids=["ooxml", "odf"])
def test_office_containers_get_structure_checks_but_no_member_inspection(
    tmp_path: Path, build: Build
) -> None:
    recorder = Recorder()
    path = build(tmp_path)

    outcome = inspect_archive(sample_of(path, depth=5), Limits(), recorder)

    assert is_office_container(path)
    assert outcome == InspectorReport()
    assert recorder.calls == []


def test_an_office_container_still_fails_on_a_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        with archive.open("word/document.xml", "w") as part:
            for _ in range(20):
                part.write(bytes(MB))

    assert codes(inspect_archive(sample_of(path), Limits(), Recorder())) == {"archive_ratio"}


@pytest.mark.parametrize(
    "build",
    [text_files, tar_with("w:gz"), raw_bytes(b"text"), raw_bytes(b"PK\x03\x04junk")],
    ids=["zip", "tar", "text", "broken-zip"],
)
def test_other_files_are_not_office_containers(tmp_path: Path, build: Build) -> None:
    assert not is_office_container(build(tmp_path))


def test_without_a_member_inspector_the_caps_still_hold(tmp_path: Path) -> None:
    lie = patched(zeros_zip(50 * MB), size=1000)(tmp_path)

    assert codes(inspect_archive(sample_of(text_files(tmp_path)), Limits(), None)) == set()
    assert codes(inspect_archive(sample_of(lie), Limits(), None)) == {"archive_ratio"}


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        (text_files, "zip"),
        (lambda tmp: zip_of(tmp, []), "zip"),
        (tar_with("w:"), "tar"),
        (tar_with("w:gz"), "gzip"),
        (compressed(bzip2_writer), "bzip2"),
        (compressed(xz_writer), "xz"),
        (raw_bytes(b"plain text, named .zip or not"), None),
        (raw_bytes(b""), None),
    ],
    ids=["zip", "empty-zip", "tar", "tar-gz", "bzip2", "xz", "text", "empty"],
)
def test_archive_kind_comes_from_magic_bytes(
    tmp_path: Path, build: Build, kind: str | None
) -> None:
    assert archive_kind(sample_of(build(tmp_path))) == kind


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (many_entries(20_000), {"archive_too_many_entries"}),
        (quoted_overlap_bomb(), {"archive_overlapping_entries", "archive_ratio"}),
        (shared_header_bomb(), {"archive_overlapping_entries", "archive_invalid", "archive_ratio"}),
    ],
    ids=["20000-entries", "quoted-overlap-bomb", "shared-header-bomb"],
)
def test_bombs_are_rejected_quickly(
    tmp_path: Path, build: Build, expected: set[str], request: pytest.FixtureRequest
) -> None:
    sample = sample_of(build(tmp_path))

    started = time.perf_counter()
    outcome = inspect_archive(sample, Limits(), Recorder())
    elapsed = time.perf_counter() - started

    # Kept on the report (junit XML, hooks); the record_property fixture warns under xunit2.
    request.node.user_properties += [("seconds", round(elapsed, 4)), ("bytes", sample.size)]
    assert codes(outcome) == expected
    assert elapsed < 2.0  # an explicit requirement: generous, and measured once


@pytest.mark.parametrize(
    "build", [text_files, tar_with("w:gz"), compressed(xz_writer)], ids=["zip", "tar-gz", "xz"]
)
def test_damaged_archives_never_raise(tmp_path: Path, build: Build) -> None:
    good = build(tmp_path).read_bytes()
    path = tmp_path / "damaged"
    variants = [good[:cut] for cut in range(len(good))]
    variants += [good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :] for at in range(len(good))]
    for variant in variants:
        path.write_bytes(variant)
        outcome = inspect_archive(sample_of(path), Limits(), Recorder())
        assert codes(outcome) <= set(CODES)


def test_codes_are_documented() -> None:
    assert all(code.startswith("archive_") for code in CODES)
    assert all(description and "\n" not in description for description in CODES.values())
    emitted: set[str] = set().union(*(case.values[2] for case in CASES))
    assert emitted == set(CODES)  # every code is emitted, and by some row of the table
