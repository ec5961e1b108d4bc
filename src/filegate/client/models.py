"""What the client returns: uploads, files with their verdict, share links, upload tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from filegate.domain import FileState, Finding

__all__ = ["File", "FileState", "Finding", "Link", "Upload", "UploadToken"]


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True, slots=True)
class Upload:
    """A finished tus upload. ``file_id`` is the upload's id, and the file's.

    ``resumed_from`` is the offset an earlier run had reached (0 for a fresh upload),
    ``bytes_sent`` the body bytes this run sent (retries included), ``sha256`` the digest of
    the whole local file as uploaded, ``retries`` the failed requests that were retried.
    """

    file_id: str
    url: str
    name: str
    size: int
    sha256: str
    resumed_from: int = 0
    bytes_sent: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class File:
    """A file's record (``GET /v1/files/{id}``); ``raw`` keeps every field the server sent.

    ``uploaded_by`` is the id of the API key or upload token that uploaded it.
    """

    id: str
    name: str
    size: int
    sha256: str
    state: FileState
    profile: str
    findings: tuple[Finding, ...]
    received_size: int | None = None
    received_sha256: str | None = None
    detected_type: str | None = None
    sanitized: bool = False
    uploaded_by: str | None = None
    created_at: datetime | None = None
    inspected_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def decided(self) -> bool:
        """Inspection is over: the file is ``clean`` or ``rejected``."""
        return self.state is not FileState.QUARANTINED

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> File:
        findings = tuple(
            Finding(str(f["code"]), str(f["message"]), f.get("where"))
            for f in data.get("findings", ())
        )
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            state=FileState(data["state"]),
            profile=str(data["profile"]),
            findings=findings,
            received_size=data.get("received_size"),
            received_sha256=data.get("received_sha256"),
            detected_type=data.get("detected_type"),
            sanitized=bool(data.get("sanitized", False)),
            uploaded_by=data.get("uploaded_by"),
            created_at=_time(data.get("created_at")),
            inspected_at=_time(data.get("inspected_at")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Link:
    """A share link: ``url`` downloads the file without a key until ``expires_at``."""

    id: str
    url: str
    expires_at: datetime
    disposition: str
    max_downloads: int | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Link:
        expires_at = _time(data["expires_at"])
        assert expires_at is not None
        return cls(
            id=str(data["id"]),
            url=str(data["url"]),
            expires_at=expires_at,
            disposition=str(data["disposition"]),
            max_downloads=data.get("max_downloads"),
        )


@dataclass(frozen=True, slots=True)
class UploadToken:
    """A short-lived upload token for a browser; ``token`` (``fgt_...``) is shown only once."""

    id: str
    token: str = field(repr=False)
    tenant: str
    profile: str
    max_size: int
    max_files: int
    metadata: Mapping[str, str]
    expires_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadToken:
        expires_at = _time(data["expires_at"])
        assert expires_at is not None
        return cls(
            id=str(data["id"]),
            token=str(data["token"]),
            tenant=str(data["tenant"]),
            profile=str(data["profile"]),
            max_size=int(data["max_size"]),
            max_files=int(data["max_files"]),
            metadata=dict(data.get("metadata") or {}),
            expires_at=expires_at,
        )
