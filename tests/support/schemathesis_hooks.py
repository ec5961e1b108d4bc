"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): send tus PATCH bodies as bytes."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def _offset_octet_stream(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
