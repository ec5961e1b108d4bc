"""Streaming multipart/form-data: the ``file`` part flows straight into quarantine.

Starlette's form parser spools parts to temporary files of its own; this receiver writes the one
file part through ``IncomingFile`` (hashing, counting, capping) and keeps only tiny text fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from filegate.errors import ErrorCode, FilegateError
from filegate.services.uploads import IncomingFile

FILE_FIELD = "file"
PROFILE_FIELD = "profile"
# Text fields are names and flags; anything longer is not a field this API reads.
MAX_FIELD_BYTES = 1024
# Parts beyond the file and a few fields are noise at best, a parser-cost attack at worst.
MAX_PARTS = 16
MAX_HEADERS_PER_PART = 8

OpenFile = Callable[[str | None], IncomingFile]


def boundary_of(content_type: str) -> bytes:
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise FilegateError(
            ErrorCode.MULTIPART_BOUNDARY_MISSING,
            "multipart/form-data needs a boundary parameter in Content-Type.",
        )
    if len(boundary) > 70:
        raise FilegateError(
            ErrorCode.MULTIPART_MALFORMED, "The multipart boundary is longer than 70 characters."
        )
    return boundary


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str | None = None
    value: bytearray = field(default_factory=bytearray)


class MultipartReceiver:
    """Feed it the body chunk by chunk; afterwards read ``incoming``, ``filename`` and fields."""

    def __init__(self, content_type: str, open_file: OpenFile, max_header_size: int) -> None:
        self._open_file = open_file
        self._parser = MultipartParser(
            boundary_of(content_type),
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
            max_header_count=MAX_HEADERS_PER_PART,
            max_header_size=max_header_size,
        )
        self.incoming: IncomingFile | None = None
        self.filename: str | None = None
        self.declared_type: str | None = None
        self.fields: dict[str, str] = {}
        self._part = _Part()
        self._parts = 0
        self._header_name = bytearray()
        self._header_value_buf = bytearray()
        self._ended = False

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise _parse_error(str(exc)) from None

    def finish(self) -> IncomingFile:
        """Check the body was complete and held a file; returns it."""
        if not self._ended:
            raise FilegateError(
                ErrorCode.MULTIPART_MALFORMED, "The body ended before the closing boundary."
            )
        if self.incoming is None:
            raise FilegateError(
                ErrorCode.MULTIPART_FILE_MISSING, f"The form has no {FILE_FIELD!r} part."
            )
        return self.incoming

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise FilegateError(
                ErrorCode.INVALID_REQUEST, f"A form may have at most {MAX_PARTS} parts."
            )
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value_buf += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        self._part.headers[name] = self._header_value_buf.decode("utf-8", "replace").strip()
        self._header_name.clear()
        self._header_value_buf.clear()

    def _headers_finished(self) -> None:
        part = self._part
        message = Message()
        message["content-disposition"] = part.headers.get("content-disposition", "")
        name = message.get_param("name", header="content-disposition")
        part.name = name if isinstance(name, str) else ""
        filename = message.get_filename()
        part.filename = filename if isinstance(filename, str) else None
        part.content_type = part.headers.get("content-type")
        if part.name == FILE_FIELD:
            self._begin_file(part)

    def _begin_file(self, part: _Part) -> None:
        if self.incoming is not None:
            raise FilegateError(
                ErrorCode.MULTIPART_TOO_MANY_FILES, f"Send exactly one {FILE_FIELD!r} part."
            )
        self.filename = part.filename
        self.declared_type = part.content_type
        self.incoming = self._open_file(self.fields.get(PROFILE_FIELD))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.name == FILE_FIELD and self.incoming is not None:
            self.incoming.write(data[start:end])
            return
        self._part.value += data[start:end]
        if len(self._part.value) > MAX_FIELD_BYTES:
            raise FilegateError(
                ErrorCode.MULTIPART_FIELD_TOO_LARGE,
                f"Form field {self._part.name!r} is longer than {MAX_FIELD_BYTES} bytes.",
            )

    def _part_end(self) -> None:
        part = self._part
        if part.name == PROFILE_FIELD and self.incoming is not None:
            raise FilegateError(
                ErrorCode.INVALID_REQUEST,
                f"Send the {PROFILE_FIELD!r} field before the {FILE_FIELD!r} part.",
            )
        if part.name and part.name != FILE_FIELD:
            try:
                self.fields[part.name] = part.value.decode("utf-8")
            except UnicodeDecodeError:
                raise FilegateError(
                    ErrorCode.INVALID_REQUEST, f"Form field {part.name!r} is not UTF-8."
                ) from None

    def _end(self) -> None:
        self._ended = True


def _parse_error(message: str) -> FilegateError:
    if message.startswith("Maximum header"):
        return FilegateError(
            ErrorCode.MULTIPART_HEADERS_TOO_LARGE,
            "A multipart part has too many or too large headers.",
        )
    return FilegateError(ErrorCode.MULTIPART_MALFORMED, "The multipart body is malformed.")
