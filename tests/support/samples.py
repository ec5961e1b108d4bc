"""Sample files built in code: no opaque binary fixtures in the repository."""

from __future__ import annotations

import io
import random
import struct
import zlib


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid grayscale PNG of the given size."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def noisy_png(side: int) -> bytes:
    """A PNG that does not compress: decoding and re-encoding it takes the sandbox seconds,
    long enough to kill a worker mid-inspection."""
    from PIL import Image

    rng = random.Random(side)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


HTML = b"<!DOCTYPE html><html><head><script>alert(document.cookie)</script></head></html>\n"
TEXT = b"hello, filegate\nsecond line\n"
