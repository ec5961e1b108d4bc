"""Archives: zip (with JAR and the OOXML/ODF containers), tar, and gzip/bzip2/xz streams.

Headers are judged before a byte is inflated. Only a structurally clean archive is then
inflated, member by member, under a hard byte cap (declared sizes lie); each member goes to a
private temp file that is handed to ``inspect_member`` and removed. Hostile input never raises:
whatever a parser throws becomes ``archive_invalid``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, Self

from filegate.domain import Finding
from filegate.inspect.base import InspectorReport, Limits, Sample

CODES: dict[str, str] = {
    "archive_not_allowed": "The profile does not accept archives.",
    "archive_too_deep": "Archives are nested deeper than the profile allows.",
    "archive_too_many_entries": "The archive holds more entries than the profile allows.",
    "archive_path_traversal": "An entry's path is absolute, names a drive or climbs out with '..'.",
    "archive_link_entry": "An entry is a symbolic or hard link, a device or a FIFO.",
    "archive_duplicate_entry": "Two entries share a path once case and Unicode form are ignored.",
    "archive_overlapping_entries": "Zip entries share or overlap their data (an overlap zip bomb).",
    "archive_encrypted": "An entry is encrypted, so its content cannot be inspected.",
    "archive_too_large": "The archive inflates, declared or actually, past the total size limit.",
    "archive_ratio": "The archive inflates, declared or actually, past the ratio limit.",
    "archive_size_mismatch": "An entry inflates to another size than its header declares.",
    "archive_invalid": "The archive is corrupt, truncated or inconsistent, so it cannot be read.",
}

MemberInspector = Callable[[str, str, int], InspectorReport]
"""``(extracted temp path, member name, depth) -> InspectorReport``; it must not raise either."""

# gzip, bzip2 and xz do not say what they hold; this is the member name inspect_member gets.
SINGLE_MEMBER_NAME = ""

# Inflate and copy in 64 KiB steps: bzip2 turns 1 KB into 1 GB, so no step may be unbounded.
_CHUNK = 64 * 1024
# Below 1 MiB inflated nothing is a bomb, and small files of repeated bytes beat 100:1 easily.
_RATIO_FLOOR = 1024 * 1024
# Member names are attacker text bound for logs and screens; messages cut them here.
_MAX_LABEL = 200
# tarfile reads pax and GNU long-name headers whole into memory; real ones hold a path or two.
_MAX_TAR_META_BYTES = 1024 * 1024
# Beside member data a tar spends a header, a pax header, the pax data and padding per entry.
_TAR_OVERHEAD_PER_ENTRY = 4 * tarfile.BLOCKSIZE
# xz -9 uses a 64 MiB window; a zip entry asking for more only buys an attacker memory.
_MAX_LZMA_DICT = 64 * 1024 * 1024
# Info-ZIP keeps the Unix mode in the high 16 bits of external_attr; these types are not files.
_SPECIAL_MODES = frozenset({stat.S_IFLNK, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK})
_ZIP_ENCRYPTED = 0x1
_ZIP_UTF8_NAME = 0x800
_ODF_MIMETYPE = b"application/vnd.oasis.opendocument"
_TAR_META_TYPES = frozenset(
    {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    | {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
)
_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty zip is only its end record
    (b"PK\x07\x08", "zip"),  # the marker a split zip starts with
    (b"\x1f\x8b\x08", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)

# The zip records, laid out as zipfile's own structFileHeader, structCentralDir and friends.
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_SEPARATORS = re.compile(r"[/\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")

_ENTRY_PROBLEMS = {
    "archive_path_traversal": "escapes the extraction directory",
    "archive_link_entry": "is a link, a device or a FIFO",
    "archive_duplicate_entry": "repeats the path of an earlier entry",
    "archive_overlapping_entries": "shares or overlaps the data of another entry",
    "archive_encrypted": "is encrypted",
}


def archive_kind(sample: Sample) -> str | None:
    """The format its first bytes show (never its name): zip, tar, gzip, bzip2, xz or None.

    A compressed tar is the compression ("gzip" for .tar.gz): only the first bytes count.
    """
    with open(sample.path, "rb") as fp:
        head = fp.read(tarfile.BLOCKSIZE)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "tar" if _is_tar_block(head) else None


def is_office_container(path: str | os.PathLike[str]) -> bool:
    """True for a zip holding ``[Content_Types].xml`` (OOXML) or an ODF ``mimetype`` entry."""
    try:
        with open(path, "rb") as fp:
            index = _read_zip(fp, Limits().max_archive_entries)
            return index is not None and _is_office(fp, index.spans)
    except (_Stop, OSError):
        return False


def inspect_archive(
    sample: Sample, limits: Limits, inspect_member: MemberInspector | None
) -> InspectorReport:
    """Judge the archive's structure; if it is sound, inflate and inspect every member.

    Office containers get the structural checks and the inflation caps but no member
    inspection (the office inspector judges their parts), and are neither "archives" for
    ``allow_archives`` nor a nesting level. Errors raised by ``inspect_member`` propagate.
    """
    run = _Run(sample, limits, inspect_member)
    kind = archive_kind(sample)
    try:
        if kind == "zip":
            _inspect_zip(run)
        elif kind is not None:
            _inspect_stream(run, kind)
        else:
            run.add("archive_invalid", "the content is not a zip, tar, gzip, bzip2 or xz archive")
    except _Corrupt as exc:
        run.add("archive_invalid", str(exc))
    except _CapExceeded as exc:
        run.found.extend(_size_findings(exc.total, sample.size, limits, "inflates to over"))
    return InspectorReport(findings=(*run.tally.findings(), *run.found))


class _Stop(Exception):
    """Ends an inspection early; ``inspect_archive`` turns it into findings."""


class _Corrupt(_Stop):
    """The archive cannot be read safely: ``archive_invalid`` with this message."""


class _CapExceeded(_Stop):
    """More bytes came out of a compressed tar stream than any limit allows."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.total = total


class _Tally:
    """Counts entries per finding code and keeps the first as the example: one finding each."""

    def __init__(self) -> None:
        self._count: Counter[str] = Counter()
        self._first: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._count)

    def note(self, code: str, name: str, problem: str | None = None) -> None:
        self._count[code] += 1
        self._first.setdefault(code, f"entry '{_label(name)}' {problem or _ENTRY_PROBLEMS[code]}")

    def findings(self) -> list[Finding]:
        return [
            Finding(code, self._first[code] + _more(self._count[code]))
            for code in CODES
            if code in self._count
        ]


def _more(count: int) -> str:
    return f" (and {count - 1} more)" if count > 1 else ""


@dataclass
class _Run:
    """One inspection: its inputs, per-entry tallies, other findings, bytes inflated so far."""

    sample: Sample
    limits: Limits
    inspect_member: MemberInspector | None
    tally: _Tally = field(default_factory=_Tally)
    found: list[Finding] = field(default_factory=list)
    inflated: int = 0

    def add(self, code: str, message: str) -> None:
        self.found.append(Finding(code, message))

    @property
    def rejected(self) -> bool:
        return bool(self.tally or self.found)

    def count(self, size: int) -> bool:
        """Count ``size`` more inflated bytes; False, with findings, once over a limit."""
        self.inflated += size
        over = _size_findings(self.inflated, self.sample.size, self.limits, "inflates to over")
        self.found.extend(over)
        return not over


@contextlib.contextmanager
def _parsing(what: str) -> Iterator[None]:
    """Turn whatever a parser raises on hostile bytes into ``_Corrupt``."""
    try:
        yield
    except _Stop:
        raise
    except Exception as exc:  # parsers throw anything at hostile input: ValueError, EOFError...
        raise _Corrupt(f"{what}: {_label(str(exc) or type(exc).__name__)}") from exc


def _label(name: str) -> str:
    """``name`` fit for a message: no control, bidi or invisible characters, bounded length."""
    shown = "".join(char if char.isprintable() else "?" for char in name[: _MAX_LABEL + 1])
    return shown if len(shown) <= _MAX_LABEL else shown[:_MAX_LABEL] + "..."


def _size_findings(total: int, size: int, limits: Limits, how: str) -> list[Finding]:
    found = []
    if total > limits.max_archive_total:
        message = f"the archive {how} {total} bytes, over the limit of {limits.max_archive_total}"
        found.append(Finding("archive_too_large", message))
    if total > _RATIO_FLOOR and total > limits.max_archive_ratio * max(size, 1):
        message = (
            f"the archive {how} {total} bytes from {size}, "
            f"over the ratio limit of {limits.max_archive_ratio}:1"
        )
        found.append(Finding("archive_ratio", message))
    return found


def _policy_allows(run: _Run) -> bool:
    depth = run.sample.depth + 1
    if not run.limits.allow_archives:
        run.add("archive_not_allowed", "the profile does not accept archives")
    if depth > run.limits.max_archive_depth:
        message = f"members would sit at depth {depth}, over {run.limits.max_archive_depth}"
        run.add("archive_too_deep", message)
    return not run.found


def _note_path(tally: _Tally, seen: set[str], name: str) -> None:
    if _escapes(name):
        tally.note("archive_path_traversal", name)
    key = _path_key(name)
    if key in seen:
        tally.note("archive_duplicate_entry", name)
    elif key:
        seen.add(key)


def _escapes(name: str) -> bool:
    """Absolute, drive or climbing paths, with either slash, also once NFKC folds them."""
    for form in (name, unicodedata.normalize("NFKC", name)):
        if form.startswith(("/", "\\")) or _DRIVE.match(form):
            return True
        # Windows drops trailing dots and spaces, so ". ." and "..." climb there as well.
        if any(part[:2] == ".." and not part.strip(". ") for part in _SEPARATORS.split(form)):
            return True
    return False


def _path_key(name: str) -> str:
    """The path an extractor on a case-insensitive file system would write to."""
    parts = _SEPARATORS.split(unicodedata.normalize("NFC", name.casefold()))
    return "/".join(part for part in parts if part not in ("", "."))


@contextlib.contextmanager
def _scratch(run: _Run, wanted: bool) -> Iterator[str | None]:
    """A private directory for extracted members, or None when nobody will inspect them."""
    if run.inspect_member is None or not wanted:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="filegate-archive-") as directory:
        yield directory


def _extract_member(
    run: _Run,
    scratch: str | None,
    name: str,
    chunks: Iterator[bytes],
    declared: tuple[int, int] | None,
) -> bool:
    """Inflate one member under the caps and inspect it; False once a cap stopped inflation.

    ``declared`` is the (size, CRC-32) a zip entry promises; a member that breaks the promise is
    reported and not inspected. The temp file's name is fixed: member names never become paths.
    """
    path = None if scratch is None else os.path.join(scratch, "member")
    try:
        with open(path, "xb") if path else contextlib.nullcontext() as sink:
            drained = _drain(run, chunks, sink)
        if drained is None:
            return False
        if declared is not None and drained != declared:
            size_differs = drained[0] != declared[0]
            code = "archive_size_mismatch" if size_differs else "archive_invalid"
            problem = f"inflates to {drained[0]} bytes, not the {declared[0]} declared"
            run.tally.note(code, name, problem if size_differs else "fails its CRC-32 check")
        elif path is not None and run.inspect_member is not None:
            outcome = run.inspect_member(path, name, run.sample.depth + 1)
            shown = _label(name) or "(unnamed member)"
            run.found.extend(
                Finding(f.code, f"{shown}: {f.message}", _within(shown, f.where))
                for f in outcome.findings
            )
        return True
    finally:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _within(member: str, where: str | None) -> str:
    """Where the evidence sits: the member, and the place inside it when known."""
    return member if where is None else f"{member}, {where}"


def _drain(run: _Run, chunks: Iterator[bytes], sink: BinaryIO | None) -> tuple[int, int] | None:
    """Count (and copy to ``sink``) what ``chunks`` yields: (size, CRC-32), or None at a cap."""
    size = crc = 0
    while True:
        with _parsing("member data"):
            chunk = next(chunks, None)
        if chunk is None:
            return size, crc
        if not run.count(len(chunk)):
            return None
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
        if sink is not None:
            sink.write(chunk)


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def _read_chunks(stream: _Readable) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


# --- zip ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Span:
    """A zip entry with where its data starts, read from its local header."""

    info: zipfile.ZipInfo
    data_start: int
    names_agree: bool

    @property
    def data_end(self) -> int:
        return self.data_start + self.info.compress_size


@dataclass(frozen=True, slots=True)
class _ZipIndex:
    spans: list[_Span]
    central_start: int


def _inspect_zip(run: _Run) -> None:
    with open(run.sample.path, "rb") as fp:
        index = _read_zip(fp, run.limits.max_archive_entries)
        if index is None:
            limit = run.limits.max_archive_entries
            run.add("archive_too_many_entries", f"the archive has more than {limit} entries")
            return
        office = _is_office(fp, index.spans)
        if not office and not _policy_allows(run):
            return
        _check_zip_entries(run, index)
        if run.rejected:
            return
        with _scratch(run, wanted=not office) as scratch:
            _inflate_zip(run, fp, index.spans, scratch)


def _read_zip(fp: BinaryIO, max_entries: int) -> _ZipIndex | None:
    """The entries and their local headers, or None when there are more than ``max_entries``.

    The central directory is counted first without keeping anything, so zipfile (which holds
    every entry in memory) only ever parses an archive of acceptable size.
    """
    with _parsing("zip directory"):
        central_start, central_size = _central_directory(fp)
        if _count_entries(fp, central_start, central_size, max_entries) > max_entries:
            return None
        with zipfile.ZipFile(fp) as archive:
            infos = archive.infolist()
        return _ZipIndex([_local_span(fp, info) for info in infos], central_start)


def _central_directory(fp: BinaryIO) -> tuple[int, int]:
    """(offset, size) of the central directory, found the way zipfile finds it."""
    end_at = max(fp.seek(0, os.SEEK_END) - _END.size, 0)
    fp.seek(end_at)
    end = fp.read()
    if not (len(end) == _END.size and end.startswith(b"PK\x05\x06") and end.endswith(b"\0\0")):
        # Not at the very end: an archive comment (up to 64 KiB) follows the end record.
        tail_start = max(end_at - (1 << 16), 0)
        fp.seek(tail_start)
        tail = fp.read()
        found = tail.rfind(b"PK\x05\x06")
        end = tail[found : found + _END.size]
        if found < 0 or len(end) != _END.size:
            raise _Corrupt("the zip has no end of central directory record")
        end_at = tail_start + found
    size = _END.unpack(end)[5]
    return _zip64_directory(fp, end_at) or (end_at - size, size)


def _zip64_directory(fp: BinaryIO, end_at: int) -> tuple[int, int] | None:
    locator_at = end_at - _END64_LOCATOR.size
    record_at = locator_at - _END64.size
    if record_at < 0:
        return None
    fp.seek(record_at)
    record = fp.read(_END64.size)
    locator = fp.read(_END64_LOCATOR.size)
    if not (locator.startswith(b"PK\x06\x07") and record.startswith(b"PK\x06\x06")):
        return None
    size = _END64.unpack(record)[8]
    return record_at - size, size


def _count_entries(fp: BinaryIO, start: int, size: int, limit: int) -> int:
    """Central directory records, counted up to ``limit + 1`` by zipfile's own walk."""
    if start < 0:
        raise _Corrupt("the zip's central directory starts before the file")
    fp.seek(start)
    count = walked = 0
    while walked < size and count <= limit:
        record = fp.read(_CENTRAL.size)
        if len(record) != _CENTRAL.size or walked + _CENTRAL.size > size:
            raise _Corrupt("the zip's central directory is truncated")
        fields = _CENTRAL.unpack(record)
        if fields[0] != b"PK\x01\x02":
            raise _Corrupt("the zip's central directory has a bad record")
        skip = fields[12] + fields[13] + fields[14]  # name, extra field and comment lengths
        fp.seek(skip, os.SEEK_CUR)
        walked += _CENTRAL.size + skip
        count += 1
    return count


def _local_span(fp: BinaryIO, info: zipfile.ZipInfo) -> _Span:
    fp.seek(info.header_offset)
    header = fp.read(_LOCAL.size)
    if len(header) != _LOCAL.size or not header.startswith(b"PK\x03\x04"):
        raise _Corrupt(f"entry '{_label(info.filename)}' has no local header")
    name_size, extra_size = _LOCAL.unpack(header)[10:]
    # Streaming extractors read only local headers: the name there must be the one we judged.
    # Bytes are compared, as some writers set the UTF-8 flag in only one of the two headers.
    encoding = "utf-8" if info.flag_bits & _ZIP_UTF8_NAME else "cp437"
    agree = fp.read(name_size) == info.orig_filename.encode(encoding)
    return _Span(info, info.header_offset + _LOCAL.size + name_size + extra_size, agree)


def _is_office(fp: BinaryIO, spans: list[_Span]) -> bool:
    by_name = {span.info.filename: span for span in spans}
    if "[Content_Types].xml" in by_name:
        return True
    mimetype = by_name.get("mimetype")
    if mimetype is None or mimetype.info.flag_bits & _ZIP_ENCRYPTED:
        return False
    head = b""
    with _parsing("zip entry 'mimetype'"):
        for chunk in _zip_chunks(fp, mimetype):
            head += chunk
            if len(head) >= len(_ODF_MIMETYPE):
                break
    return head.startswith(_ODF_MIMETYPE)


def _check_zip_entries(run: _Run, index: _ZipIndex) -> None:
    seen: set[str] = set()
    for span in index.spans:
        info = span.info
        _note_path(run.tally, seen, info.filename)
        if stat.S_IFMT(info.external_attr >> 16) in _SPECIAL_MODES:
            run.tally.note("archive_link_entry", info.filename)
        if info.flag_bits & _ZIP_ENCRYPTED and not run.limits.allow_encrypted_archives:
            run.tally.note("archive_encrypted", info.filename)
        if not span.names_agree:
            run.tally.note("archive_invalid", info.filename, "has another name in its local header")
        if info.orig_filename != info.filename:
            run.tally.note("archive_invalid", info.filename, "has a NUL byte in its name")
    for span in _overlapping(index):
        run.tally.note("archive_overlapping_entries", span.info.filename)
    declared = sum(span.info.file_size for span in index.spans)
    run.found.extend(_size_findings(declared, run.sample.size, run.limits, "declares"))


def _overlapping(index: _ZipIndex) -> Iterator[_Span]:
    """Entries whose local header lies inside earlier data, or whose data runs into the directory.

    This is the non-recursive zip bomb: many entries inflating one shared deflate stream.
    """
    end = 0
    for span in sorted(index.spans, key=lambda span: span.info.header_offset):
        if span.info.header_offset < end or span.data_end > index.central_start:
            yield span
        end = max(end, span.data_end)


def _inflate_zip(run: _Run, fp: BinaryIO, spans: list[_Span], scratch: str | None) -> None:
    for span in spans:
        info = span.info
        if info.is_dir() or info.flag_bits & _ZIP_ENCRYPTED:
            continue  # an allowed encrypted entry cannot be read without its password
        declared = (info.file_size, info.CRC)
        if not _extract_member(run, scratch, info.filename, _zip_chunks(fp, span), declared):
            return


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int) -> bytes: ...


class _Stored:
    eof = False
    needs_input = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return data


class _Deflate:
    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    @property
    def needs_input(self) -> bool:
        return not self._zlib.unconsumed_tail

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._zlib.decompress(self._zlib.unconsumed_tail + data, max_length)


def _zip_chunks(fp: BinaryIO, span: _Span) -> Iterator[bytes]:
    """The inflated data of one entry, from its compressed bytes, whatever sizes it declares.

    zipfile's own reader trusts the declared size and inflates bzip2/LZMA reads unbounded.
    """
    fp.seek(span.data_start)
    compressed = span.info.compress_size
    method = span.info.compress_type
    decompressor: _Decompressor
    if method == zipfile.ZIP_STORED:
        decompressor = _Stored()
    elif method == zipfile.ZIP_DEFLATED:
        decompressor = _Deflate()
    elif method == zipfile.ZIP_BZIP2:
        decompressor = bz2.BZ2Decompressor()
    elif method == zipfile.ZIP_LZMA:
        decompressor, header_size = _zip_lzma(fp)
        compressed -= header_size
    else:
        name = _label(span.info.filename)
        raise _Corrupt(f"entry '{name}' uses compression method {method}, which is unsupported")
    yield from _inflate(fp, compressed, decompressor)


def _zip_lzma(fp: BinaryIO) -> tuple[_Decompressor, int]:
    """A raw LZMA1 decompressor from the version, size and properties heading a zip entry."""
    header = fp.read(4)
    if len(header) != 4:
        raise _Corrupt("an LZMA entry is truncated")
    props = fp.read(int.from_bytes(header[2:4], "little"))
    if len(props) != 5:
        raise _Corrupt("an LZMA entry has malformed properties")
    dict_size = int.from_bytes(props[1:], "little")
    if dict_size > _MAX_LZMA_DICT:
        raise _Corrupt(f"an LZMA entry asks for a {dict_size}-byte window")
    packed = props[0]
    lc, lp, pb = packed % 9, packed // 9 % 5, packed // 45
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1]), len(header) + len(props)


def _inflate(fp: BinaryIO, compressed: int, decompressor: _Decompressor) -> Iterator[bytes]:
    """Feed ``compressed`` bytes from ``fp`` through ``decompressor``, yielding bounded chunks."""
    left = compressed
    while not decompressor.eof:
        data = b""
        if decompressor.needs_input and left > 0:
            data = fp.read(min(_CHUNK, left))
            if not data:
                raise _Corrupt("entry data is truncated")
            left -= len(data)
        chunk = decompressor.decompress(data, _CHUNK)
        if chunk:
            yield chunk
        elif left <= 0 and decompressor.needs_input:
            return


# --- tar and single compressed streams ----------------------------------------------------


def _inspect_stream(run: _Run, kind: str) -> None:
    if not _policy_allows(run):
        return
    is_tar = kind == "tar" or _holds_tar(run.sample.path, kind)
    if is_tar:
        _check_tar_headers(run, kind)
        if run.rejected:
            return
    with _scratch(run, wanted=True) as scratch:
        if is_tar:
            _inflate_tar(run, kind, scratch)
        else:
            with _decompressed(run.sample.path, kind) as stream:
                chunks = _read_chunks(stream)
                _extract_member(run, scratch, SINGLE_MEMBER_NAME, chunks, None)


@contextlib.contextmanager
def _decompressed(path: str, kind: str) -> Iterator[io.BufferedIOBase]:
    """The file as a stream of its content: decompressed unless it is a plain tar.

    These readers inflate in bounded steps; every caller reads in ``_CHUNK``s.
    """
    with open(path, "rb") as raw:
        if kind == "tar":
            yield raw
            return
        with _decompressor(raw, kind) as stream:
            yield stream


def _decompressor(raw: BinaryIO, kind: str) -> io.BufferedIOBase:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw)
    return lzma.LZMAFile(raw)


def _holds_tar(path: str, kind: str) -> bool:
    with _decompressed(path, kind) as stream, _parsing(f"{kind} stream"):
        return _is_tar_block(stream.read(tarfile.BLOCKSIZE))


def _is_tar_block(block: bytes) -> bool:
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except (tarfile.HeaderError, ValueError):
        return False
    return True


class _StrictTarInfo(tarfile.TarInfo):
    """Headers as tarfile reads them, minus two ways tarfile lets hostile input through."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            # tarfile ends the archive quietly at a damaged header; GNU tar skips it and reads
            # on, so whatever follows would reach users uninspected. Zero or short blocks end it.
            if len(buf) == tarfile.BLOCKSIZE and buf.strip(b"\0"):
                raise _Corrupt(f"a tar header is damaged ({exc})") from exc
            raise
        if info.type in _TAR_META_TYPES and info.size > _MAX_TAR_META_BYTES:
            raise _Corrupt(f"a tar extended header claims {info.size} bytes")
        return info


class _CappedReader(io.BufferedIOBase):
    """Passes reads through and raises ``_CapExceeded`` once more than ``cap`` bytes went by."""

    def __init__(self, stream: io.BufferedIOBase, cap: int) -> None:
        super().__init__()
        self._stream = stream
        self._cap = cap
        self._total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        data = self._stream.read(_CHUNK if size is None or size < 0 else size)
        self._total += len(data)
        if self._total > self._cap:
            raise _CapExceeded(self._total)
        return data


@contextlib.contextmanager
def _tar_stream(run: _Run, kind: str) -> Iterator[tarfile.TarFile]:
    limits = run.limits
    member_budget = min(limits.max_archive_total, limits.max_archive_ratio * run.sample.size)
    overhead = (limits.max_archive_entries + 1) * _TAR_OVERHEAD_PER_ENTRY + tarfile.RECORDSIZE
    with _decompressed(run.sample.path, kind) as stream:
        # Headers and padding are read without being member data; this bounds them too.
        reader = _CappedReader(stream, max(member_budget, _RATIO_FLOOR) + overhead)
        with _open_tar(reader) as archive:
            yield archive


def _open_tar(reader: _CappedReader) -> tarfile.TarFile:
    with _parsing("tar header"):
        return tarfile.open(fileobj=reader, mode="r|", tarinfo=_StrictTarInfo)


def _tar_members(archive: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        with _parsing("tar header"):
            info = archive.next()
        if info is None:
            return
        yield info


def _check_tar_headers(run: _Run, kind: str) -> None:
    """Every header, read in streaming mode; stops as soon as a count or size limit is passed."""
    limit = run.limits.max_archive_entries
    seen: set[str] = set()
    declared = 0
    with _tar_stream(run, kind) as archive:
        for count, info in enumerate(_tar_members(archive), start=1):
            if count > limit:
                run.add("archive_too_many_entries", f"the archive has more than {limit} entries")
                return
            _note_path(run.tally, seen, info.name)
            if info.issym() or info.islnk() or info.ischr() or info.isblk() or info.isfifo():
                run.tally.note("archive_link_entry", info.name)
            declared += info.size
            over = _size_findings(declared, run.sample.size, run.limits, "declares")
            if over:
                run.found.extend(over)
                return
        _require_zeros_after_end(archive)


def _require_zeros_after_end(archive: tarfile.TarFile) -> None:
    # tarfile stops at the first zero block; GNU tar -i reads on past it: hide nothing there.
    with _parsing("tar trailer"):
        while chunk := archive.fileobj.read(_CHUNK):
            if chunk.strip(b"\0"):
                raise _Corrupt("data follows the end of the tar archive")


def _inflate_tar(run: _Run, kind: str, scratch: str | None) -> None:
    with _tar_stream(run, kind) as archive:
        for info in _tar_members(archive):
            if not info.isreg():
                continue
            with _parsing("tar member"):
                member = archive.extractfile(info)
            if member is None:
                continue
            if not _extract_member(run, scratch, info.name, _read_chunks(member), None):
                return
