"""Ids, states, findings and verdicts: the vocabulary every other module shares."""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

from filegate.errors import ErrorCode, FilegateError

# Crockford base32, as ULID uses: ids sort by creation time, so a cursor is simply the last id.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def new_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 characters."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def is_valid_id(candidate: str) -> bool:
    return bool(_ID_RE.fullmatch(candidate))


def parse_id(candidate: str) -> str:
    """Return ``candidate`` if it is a well-formed id, else raise ``invalid_file_id``."""
    if not is_valid_id(candidate):
        raise FilegateError(ErrorCode.INVALID_FILE_ID, "File ids are 26-character ULIDs.")
    return candidate


class FileState(enum.StrEnum):
    QUARANTINED = "quarantined"
    CLEAN = "clean"
    REJECTED = "rejected"


class Area(enum.StrEnum):
    """Storage areas. Rejected files stay in quarantine until they are purged; resumable
    uploads grow in ``uploads`` and move to quarantine when complete."""

    UPLOADS = "uploads"
    QUARANTINE = "quarantine"
    CLEAN = "clean"


_Member = TypeVar("_Member", bound=enum.Enum)


def parse_choices(
    kind: type[_Member], names: str | Iterable[str], *, what: str, empty: str
) -> frozenset[_Member]:
    """Members of ``kind`` named in a comma-separated string or a list.

    An unknown name is refused with the known ones listed; ``empty`` says why none is refused.
    """
    listed = names.split(",") if isinstance(names, str) else list(names)
    chosen = set()
    for name in (n.strip() for n in listed if n.strip()):
        try:
            chosen.add(kind(name))
        except ValueError:
            known = ", ".join(str(member.value) for member in kind)
            raise FilegateError(
                ErrorCode.INVALID_REQUEST, f"Unknown {what} {name!r}; known: {known}."
            ) from None
    if not chosen:
        raise FilegateError(ErrorCode.INVALID_REQUEST, empty)
    return frozenset(chosen)


class Scope(enum.StrEnum):
    UPLOAD = "upload"
    READ = "read"
    ADMIN = "admin"


class Action(enum.StrEnum):
    """What a profile does with a finding."""

    REJECT = "reject"
    ACCEPT = "accept"


SanitizeKind = Literal["images", "svg", "pdf"]


class SanitizeMode(enum.StrEnum):
    """When an inspector writes the copy that is served instead of the upload."""

    # Every file of the kind is rewritten (images re-encoded, PDFs re-saved by qpdf).
    ALWAYS = "always"
    # Only a file with something to remove (metadata, active content, trailing bytes); any
    # other is served byte-identical to the upload.
    WHEN_NEEDED = "when_needed"
    # The upload is served as it came; what would have been removed is only reported.
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class SanitizeRules:
    """The sanitising mode per kind of file that has a sanitiser."""

    images: SanitizeMode = SanitizeMode.WHEN_NEEDED
    svg: SanitizeMode = SanitizeMode.ALWAYS
    pdf: SanitizeMode = SanitizeMode.WHEN_NEEDED

    @classmethod
    def every(cls, mode: SanitizeMode) -> SanitizeRules:
        return cls(images=mode, svg=mode, pdf=mode)

    @property
    def any(self) -> bool:
        return any(mode is not SanitizeMode.NEVER for mode in (self.images, self.svg, self.pdf))

    def mode(self, kind: SanitizeKind) -> SanitizeMode:
        return {"images": self.images, "svg": self.svg, "pdf": self.pdf}[kind]


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation by an inspector. ``code`` is stable; ``message`` is for humans;
    ``where`` is the evidence's place in the file when there is one (a zip part, a PDF object,
    a byte offset, an archive member), so a false positive can be found in a minute."""

    code: str
    message: str
    where: str | None = None

    def as_dict(self) -> dict[str, str]:
        found = {"code": self.code, "message": self.message}
        if self.where is not None:
            found["where"] = self.where
        return found

    @classmethod
    def of(cls, stored: Mapping[str, str]) -> Finding:
        """The finding ``as_dict`` wrote."""
        return cls(code=stored["code"], message=stored["message"], where=stored.get("where"))


@dataclass(frozen=True, slots=True)
class InspectionLimits:
    """Thresholds for hostile input; each default carries its reason."""

    # Pillow's own guard is ~179 Mpx; 100 Mpx covers 61 Mpx full-frame cameras and A0 scans
    # at 300 dpi (a real 9312x6560 office scan is 61 Mpx), and keeps a decode near 400 MB.
    max_pixels: int = 100_000_000
    # Animated GIF/WebP frames are decoded one by one; thousands of frames are a CPU bomb.
    max_frames: int = 1_000
    # Real archives hold hundreds of entries; tens of thousands make scanners spin.
    max_archive_entries: int = 10_000
    # zip-in-zip-in-zip: two levels cover "a folder of exported zips"; more is a bomb shape.
    max_archive_depth: int = 2
    # Text compresses ~10:1, office XML ~20:1; 100:1 over the whole archive is a bomb.
    max_archive_ratio: int = 100
    # Total bytes an archive may inflate to, declared or actual (declared sizes lie).
    max_archive_total: int = 1024 * 1024 * 1024
    allow_encrypted_archives: bool = False
    allow_archives: bool = True
    allow_svg: bool = False
    allow_macros: bool = False
    allow_pdf_links: bool = True
    # Audio and video: a feature film runs about 3 hours; a header claiming days is a lie or a
    # stream that never ends.
    max_media_seconds: int = 6 * 3600
    # Real files carry a video, an audio track or two and a few subtitles; hundreds of streams
    # make demuxers and players allocate per stream.
    max_media_streams: int = 32


@dataclass(frozen=True, slots=True)
class InspectionPolicy:
    """The part of an upload profile that the inspectors need, free of configuration code."""

    name: str
    max_size: int
    extensions: frozenset[str]
    types: frozenset[str]
    allow_empty: bool = False
    actions: Mapping[str, Action] = field(default_factory=dict)
    limits: InspectionLimits = field(default_factory=InspectionLimits)
    # Which kinds get a sanitised copy (re-encoded images, SVG through svg-hush, PDFs without
    # active content) promoted instead of the upload, and when.
    sanitize: SanitizeRules = field(default_factory=SanitizeRules)

    def action_for(self, finding: Finding) -> Action:
        """Findings reject unless the profile explicitly accepts their code."""
        return self.actions.get(finding.code, Action.REJECT)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of inspecting one file."""

    state: FileState
    findings: tuple[Finding, ...]
    detected_type: str | None

    @classmethod
    def decide(
        cls, policy: InspectionPolicy, findings: Iterable[Finding], detected_type: str | None
    ) -> Verdict:
        found = tuple(findings)
        rejecting = any(policy.action_for(f) is Action.REJECT for f in found)
        state = FileState.REJECTED if rejecting else FileState.CLEAN
        return cls(state=state, findings=found, detected_type=detected_type)


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A stored file as the rest of the system sees it (repositories return these)."""

    id: str
    tenant: str
    original_name: str | None
    display_name: str
    size: int
    sha256: str
    declared_type: str | None
    detected_type: str | None
    profile: str
    state: FileState
    findings: tuple[Finding, ...]
    created_at: datetime
    updated_at: datetime
    inspected_at: datetime | None
    # The upload as received (None: inspected before this was recorded); ``sha256`` and
    # ``size`` above are what is served.
    received_sha256: str | None = None
    received_size: int | None = None
    # What the served, sanitised copy changed; empty when the upload itself is served.
    sanitized: tuple[str, ...] = ()
    # The id of the upload token, or API key, that uploaded it (None: before 0009, imports).
    uploaded_by: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    tenant: str
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class ShareLinkRecord:
    id: str
    file_id: str
    tenant: str
    key_id: str
    disposition: str  # attachment or inline
    max_downloads: int | None
    downloads: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant and scopes of the API key that authenticated, or of the
    upload token (then ``key_id`` is the token's id and ``grant`` says what it may do)."""

    key_id: str
    tenant: str
    scopes: frozenset[Scope]
    grant: UploadGrant | None = None

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def owns(self, uploaded_by: str | None) -> bool:
        """Whether a file or upload of the tenant is this caller's to see: any of them for an
        API key, only those it uploaded itself for an upload token."""
        return self.grant is None or uploaded_by == self.key_id


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """What an upload token allows a browser: uploads into one profile, each at most
    ``max_size`` bytes, ``max_files`` of them, with ``metadata`` the browser cannot change."""

    profile: str
    max_size: int
    max_files: int
    metadata: tuple[tuple[str, str], ...]
    expires_at: datetime

    @property
    def fixed_metadata(self) -> dict[str, str]:
        return dict(self.metadata)


@dataclass(frozen=True, slots=True)
class UploadTokenRecord:
    """An upload token as stored: its grant, who minted it, and how many uploads it made."""

    id: str
    tenant: str
    key_id: str
    grant: UploadGrant
    files_created: int
    created_at: datetime
    revoked_at: datetime | None


def utcnow() -> datetime:
    return datetime.now(UTC)


class UploadState(enum.StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    TERMINATED = "terminated"
    # Past Upload-Expires without finishing: the expire job removes the bytes, then the row.
    EXPIRED = "expired"
    # A final upload whose parts could not be joined for good (over the profile's size).
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A resumable upload. ``length`` is None while deferred; ``concat`` is partial/final."""

    id: str
    tenant: str
    profile: str
    length: int | None
    offset: int
    metadata_header: str
    filename: str | None
    filetype: str | None
    concat: str | None
    parts: tuple[str, ...]
    state: UploadState
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    # As FileRecord.uploaded_by; the file a complete upload becomes inherits it.
    uploaded_by: str | None = None

    @property
    def is_final(self) -> bool:
        return self.concat == "final"

    @property
    def is_partial(self) -> bool:
        return self.concat == "partial"


class JobKind(enum.StrEnum):
    """Background jobs. Per-file jobs are keyed (kind, file id); schedules (kind, minute)."""

    INSPECT = "inspect"
    PROMOTE = "promote"
    DELIVER = "deliver"
    EXPIRE = "expire"
    RECONCILE = "reconcile"
    RESCAN = "rescan"
    PURGE = "purge"
    # Purge shared caches of a key (file-<id>, link-<id>); keyed by the surrogate key.
    EVICT = "evict"


# The jobs that run on a cron schedule rather than for one file or event.
SCHEDULED_JOBS = (JobKind.EXPIRE, JobKind.RECONCILE, JobKind.RESCAN, JobKind.PURGE)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One row of the job ledger: what should run, what is running, what happened."""

    id: str
    kind: JobKind
    subject: str
    state: JobState
    attempts: int
    run_after: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str | None
    error: str | None
    # The request that caused it, directly or through the job that queued it (for the logs).
    request_id: str | None = None


class EventType(enum.StrEnum):
    """Webhook event types (Standard Webhooks ``type`` field)."""

    FILE_CLEAN = "file.clean"
    FILE_REJECTED = "file.rejected"
    UPLOAD_EXPIRED = "upload.expired"


class EventState(enum.StrEnum):
    """A webhook event: pending while its deliveries are retried, then delivered or failed."""

    PENDING = "pending"
    DELIVERED = "delivered"
    # Given up: retries ran out, or the endpoint was retired first.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WebhookEndpointRecord:
    id: str
    tenant: str
    url: str
    events: frozenset[EventType]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookEventRecord:
    """One event for one endpoint; ``id`` is the ``webhook-id`` and never changes on retry."""

    id: str
    endpoint_id: str
    tenant: str
    type: EventType
    subject: str
    payload: Mapping[str, object]
    state: EventState
    attempts: int
    last_status: int | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class FileFilter:
    """What the review console's list narrows a tenant's files to; None means any."""

    tenant: str
    state: FileState | None = None
    profile: str | None = None
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


# Antivirus findings: no profile setting and no reviewer may ever release a file that has one.
ANTIVIRUS_CODES = frozenset({"malware_found", "scanner_unavailable"})


class ReviewAction(enum.StrEnum):
    """What an operator did to a file in the review console (each written to the audit log)."""

    RELEASE = "release"
    REJECT = "reject"
    DELETE = "delete"
    REINSPECT = "reinspect"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the append-only review audit log: who did what to which file, when and why.

    ``before`` and ``after`` are file states; ``after`` is None when the file was deleted.
    """

    id: str
    at: datetime
    actor_key_id: str
    actor: str  # the key's name and prefix, as they were at the time
    action: ReviewAction
    file_id: str
    tenant: str
    reason: str
    before: FileState
    after: FileState | None
    extra: Mapping[str, object] = field(default_factory=dict)
