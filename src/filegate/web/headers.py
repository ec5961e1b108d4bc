"""Header helpers: RFC 6266 Content-Disposition, RFC 9110 single byte ranges, the facts the
cache rules decide on."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any
from urllib.parse import quote

from starlette.requests import Request

from filegate import caching
from filegate.domain import FileRecord
from filegate.errors import ErrorCode, FilegateError

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
# Quoted-string in the ASCII fallback cannot safely hold these; the filename* form carries the name.
_UNSAFE_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%;]')


def content_disposition(name: str, kind: str = "attachment") -> str:
    """``attachment`` (or ``inline``) with an ASCII fallback and the exact UTF-8 name
    (RFC 6266 / RFC 5987)."""
    fallback = _UNSAFE_FALLBACK.sub("_", name) or "file"
    encoded = quote(name, safe="")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def disposition_filename(header: str | None) -> str | None:
    """The file name from a Content-Disposition header, decoding RFC 2231/5987 ``filename*``."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    filename = message.get_filename()
    return filename if isinstance(filename, str) else None


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one ``[start, end)`` range asked for, or None to serve everything.

    Multi-range and malformed requests are ignored (RFC 9110 allows it); a syntactically valid
    range that lies outside the file is a 416.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else int(last) + 1
    if start >= size or end <= start:
        raise _unsatisfiable(size)
    return start, min(end, size)


def _unsatisfiable(size: int) -> FilegateError:
    return FilegateError(
        ErrorCode.RANGE_NOT_SATISFIABLE,
        f"The requested range is outside the file ({size} bytes).",
        headers={"Content-Range": f"bytes */{size}"},
    )


def request_facts(request: Request, record: FileRecord | None, **extra: Any) -> caching.Facts:
    """What the cache rules look at, for this request about ``record``."""
    file: dict[str, Any] = {}
    if record is not None:
        file = {
            "state": record.state.value,
            "detected_type": record.detected_type or "",
            "profile": record.profile,
            "file_id": record.id,
        }
    return caching.Facts(
        method=request.method,
        path=request.url.path,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=frozenset(request.query_params.keys()),
        **(file | extra),
    )
