"""Absolute URLs for Location headers, correct behind a reverse proxy when told to trust it."""

from __future__ import annotations

import re

from fastapi import Request

from filegate.config import Settings

_FORWARDED_PAIR = re.compile(r'(?i)\b(proto|host)=("?)([^";,\s]+)\2')
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,255}")


def absolute_url(request: Request, settings: Settings, path: str) -> str:
    """``public_url`` if set; else the forwarded origin if trusted; else the request's own."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + path
    if settings.trust_forwarded_headers:
        origin = _forwarded_origin(request)
        if origin is not None:
            return origin + path
    return str(request.base_url).rstrip("/") + path


def _forwarded_origin(request: Request) -> str | None:
    """RFC 7239 ``Forwarded`` (first hop), falling back to ``X-Forwarded-Proto/Host``."""
    proto = host = None
    forwarded = request.headers.get("forwarded")
    if forwarded:
        first_hop = forwarded.split(",", 1)[0]
        pairs = {m.group(1).lower(): m.group(3) for m in _FORWARDED_PAIR.finditer(first_hop)}
        proto, host = pairs.get("proto"), pairs.get("host")
    proto = proto or _first(request.headers.get("x-forwarded-proto"))
    host = host or _first(request.headers.get("x-forwarded-host"))
    if host is None or not _HOST.fullmatch(host):
        return None
    scheme = proto.lower() if proto and proto.lower() in ("http", "https") else request.url.scheme
    return f"{scheme}://{host}"


def _first(value: str | None) -> str | None:
    return value.split(",", 1)[0].strip() if value else None
