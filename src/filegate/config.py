"""Settings: one object, read from ``filegate.toml`` and ``FILEGATE_*`` variables (env wins)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from filegate.domain import (
    ANTIVIRUS_CODES,
    Action,
    InspectionLimits,
    InspectionPolicy,
    SanitizeMode,
    SanitizeRules,
)
from filegate.errors import ErrorCode, FilegateError

DEFAULT_CONFIG_FILE = Path("filegate.toml")
_MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_EXT_RE = re.compile(r"^[a-z0-9][a-z0-9_+-]{0,15}$")
_PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A browser's Origin header: scheme, lowercase host, optional port; no path, no slash.
_ORIGIN_RE = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?")
_S3_URL_RE = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]*)?")
_SECRET_KEY_RE = re.compile(r"access_key|secret|session_token|password|link_keys", re.IGNORECASE)


_LIMIT_DEFAULTS = InspectionLimits()


class ProfileLimits(BaseModel):
    """Per-profile thresholds for hostile input (defaults and reasons: domain.InspectionLimits)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_pixels: int = Field(default=_LIMIT_DEFAULTS.max_pixels, gt=0)
    max_frames: int = Field(default=_LIMIT_DEFAULTS.max_frames, gt=0)
    max_archive_entries: int = Field(default=_LIMIT_DEFAULTS.max_archive_entries, gt=0)
    max_archive_depth: int = Field(default=_LIMIT_DEFAULTS.max_archive_depth, ge=0)
    max_archive_ratio: int = Field(default=_LIMIT_DEFAULTS.max_archive_ratio, gt=0)
    max_archive_total: ByteSize = ByteSize(_LIMIT_DEFAULTS.max_archive_total)
    allow_encrypted_archives: bool = _LIMIT_DEFAULTS.allow_encrypted_archives
    allow_archives: bool = _LIMIT_DEFAULTS.allow_archives
    allow_svg: bool = _LIMIT_DEFAULTS.allow_svg
    allow_macros: bool = _LIMIT_DEFAULTS.allow_macros
    allow_pdf_links: bool = _LIMIT_DEFAULTS.allow_pdf_links
    max_media_seconds: int = Field(default=_LIMIT_DEFAULTS.max_media_seconds, gt=0)
    max_media_streams: int = Field(default=_LIMIT_DEFAULTS.max_media_streams, gt=0)

    def domain(self) -> InspectionLimits:
        values = self.model_dump()
        values["max_archive_total"] = int(self.max_archive_total)
        return InspectionLimits(**values)


_SANITIZE_DEFAULTS = SanitizeRules()


class Sanitize(BaseModel):
    """When each kind gets a sanitised copy; a profile may also give one mode for all, or
    ``true`` ("always") / ``false`` ("never") as before the modes existed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: SanitizeMode = _SANITIZE_DEFAULTS.images
    svg: SanitizeMode = _SANITIZE_DEFAULTS.svg
    pdf: SanitizeMode = _SANITIZE_DEFAULTS.pdf

    @model_validator(mode="before")
    @classmethod
    def _one_for_all(cls, value: object) -> object:
        if isinstance(value, bool):
            value = SanitizeMode.ALWAYS if value else SanitizeMode.NEVER
        if isinstance(value, str):
            return dict.fromkeys(("images", "svg", "pdf"), value)
        return value

    def domain(self) -> SanitizeRules:
        return SanitizeRules(images=self.images, svg=self.svg, pdf=self.pdf)


# --- cache rules (docs/caching.md; evaluated by filegate.caching) ----------------------------

Route = Literal["content", "share", "metadata", "status", "other"]
PRIVATE = "private, no-store"


class Match(BaseModel):
    """Which requests a rule is about; an empty list matches anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: list[Route] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    # Detected media types, with shell wildcards (``image/*``).
    types: list[str] = Field(default_factory=list)
    disposition: Literal["any", "inline", "attachment"] = "any"


class Bypass(BaseModel):
    """Conditions under which a matching request is answered ``private, no-store``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    authorization: bool = True
    query: list[str] = Field(default_factory=list)
    cookies: list[str] = Field(default_factory=list)
    range: bool = False
    quarantined: bool = True
    limited_link: bool = True


class Example(BaseModel):
    """A request and the file it is about, as ``check-config`` and ``cache explain`` take it.
    ``{file}`` in the request stands for a file id, ``{share}`` for a share link (its path and
    query)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: str = Field(pattern=r"^(GET|HEAD) (/|\{share\})\S*$")
    headers: dict[str, str] = Field(default_factory=dict)
    type: str = "image/png"
    state: Literal["clean", "quarantined", "rejected"] = "clean"
    profile: str = "default"
    disposition: Literal["inline", "attachment"] = "attachment"
    limited: bool = False


class Rule(BaseModel):
    """One named rule: what it matches, what it sends, when it steps aside, and examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Match = Field(default_factory=Match)
    # {link_seconds}: what is left of a share link's lifetime.
    cache_control: str
    cdn_cache_control: str = ""
    vary: str = ""
    # Surrogate-Key: file-<id> (and link-<id>), so a purge reaches every cached copy.
    surrogate_keys: bool = False
    bypass: Bypass = Field(default_factory=Bypass)
    cached: list[Example] = Field(default_factory=list)
    not_cached: list[Example] = Field(default_factory=list)

    @field_validator("cache_control", "cdn_cache_control", "vary")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if any(c in value for c in "\r\n"):
            raise ValueError("a header value cannot hold line breaks")
        return value


def builtin_rules() -> dict[str, Rule]:
    """Safe defaults: share-link content is public and immutable (its URL names the content
    hash); everything else, and anything asked with credentials, is private or not stored."""
    share = "GET {share}"
    return {
        "share-link": Rule(
            match=Match(routes=["share"]),
            cache_control="public, max-age={link_seconds}, immutable",
            surrogate_keys=True,
            cached=[
                Example(request=share),
                Example(request=share, headers={"Range": "bytes=0-99"}),
                Example(request=share, type="application/pdf", disposition="inline"),
            ],
            not_cached=[
                Example(request=share, headers={"Authorization": "Bearer fg_example"}),
                Example(request=share, limited=True),
            ],
        ),
        "api": Rule(
            cache_control=PRIVATE,
            bypass=Bypass(authorization=False, quarantined=False, limited_link=False),
            not_cached=[
                Example(request="GET /v1/files/{file}/content", headers={"Authorization": "x"}),
                Example(request="GET /v1/files/{file}", headers={"Authorization": "x"}),
                Example(request="GET /status"),
                Example(request="GET /healthz"),
            ],
        ),
    }


class CacheSettings(BaseModel):
    """``[cache]``: the rules, and where purges go when a file stops being servable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: dict[str, Rule] = Field(default_factory=builtin_rules)
    # Each gets a request per purge: Varnish's address, or a CDN's purge hook.
    purge_urls: list[str] = Field(default_factory=list)
    # BAN (Varnish bans by the Surrogate-Key header), PURGE, or POST for a hook.
    purge_method: Literal["BAN", "PURGE", "POST"] = "BAN"

    @field_validator("rules")
    @classmethod
    def _names(cls, rules: dict[str, Rule]) -> dict[str, Rule]:
        bad = [name for name in rules if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name)]
        if bad:
            raise ValueError(f"rule names are lowercase a-z, 0-9, - and _: {', '.join(bad)}")
        return rules


# Types a share link may ask to be shown inline: never HTML, SVG, XML or script, which a
# browser would run in the link's origin.
_NEVER_INLINE = re.compile(r"html|svg|xml|javascript|ecmascript|xhtml", re.IGNORECASE)


class ProfileLinks(BaseModel):
    """Share links of a profile's files: how long they live, and what may show inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_seconds: int = Field(default=3600, ge=60)
    max_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    inline_types: list[str] = Field(
        default_factory=lambda: [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "image/avif",
            "application/pdf",
        ]
    )

    @field_validator("inline_types")
    @classmethod
    def _inline(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if _NEVER_INLINE.search(v) or not _MIME_RE.match(v.lower())]
        if bad:
            raise ValueError(f"these types can never be shown inline: {', '.join(bad)}")
        return [v.lower() for v in values]

    @model_validator(mode="after")
    def _bounds(self) -> ProfileLinks:
        if self.default_seconds > self.max_seconds:
            raise ValueError("default_seconds is above max_seconds")
        return self


class Profile(BaseModel):
    """An upload profile: what may be uploaded under this name, how large, and what to do."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extensions: list[str] = Field(min_length=1)
    types: list[str] = Field(min_length=1)
    max_size: ByteSize = ByteSize(100 * 1024 * 1024)
    allow_empty: bool = False
    sanitize: Sanitize = Field(default_factory=Sanitize)
    actions: dict[str, Action] = Field(default_factory=dict)
    limits: ProfileLimits = Field(default_factory=ProfileLimits)
    links: ProfileLinks = Field(default_factory=ProfileLinks)
    # Finding codes a reviewer may release a rejected file despite, in the review console
    # (docs/admin-console.md); never an antivirus finding.
    overridable: list[str] = Field(default_factory=list)

    @field_validator("overridable")
    @classmethod
    def _overridable(cls, values: list[str]) -> list[str]:
        never = sorted(set(values) & ANTIVIRUS_CODES)
        if never:
            raise ValueError(f"antivirus findings are never overridable: {', '.join(never)}")
        return values

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, values: list[str]) -> list[str]:
        cleaned = [v.lower().lstrip(".") for v in values]
        bad = [v for v in cleaned if not _EXT_RE.match(v)]
        if bad:
            raise ValueError(f"not a file extension: {', '.join(bad)}")
        return cleaned

    @field_validator("types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        cleaned = [v.lower() for v in values]
        bad = [v for v in cleaned if not _MIME_RE.match(v)]
        if bad:
            raise ValueError(f"not a media type (type/subtype): {', '.join(bad)}")
        return cleaned

    @field_validator("max_size", mode="before")
    @classmethod
    def _max_size(cls, value: object) -> object:
        if isinstance(value, int | float) and value <= 0:
            raise ValueError("must be larger than 0 bytes")
        return value

    def policy(self, name: str) -> InspectionPolicy:
        return InspectionPolicy(
            name=name,
            max_size=int(self.max_size),
            extensions=frozenset(self.extensions),
            types=frozenset(self.types),
            allow_empty=self.allow_empty,
            actions=dict(self.actions),
            limits=self.limits.domain(),
            sanitize=self.sanitize.domain(),
        )


_IMAGES = {
    "image/png": ["png"],
    "image/jpeg": ["jpg", "jpeg"],
    "image/gif": ["gif"],
    "image/webp": ["webp"],
    "image/tiff": ["tif", "tiff"],
    "image/bmp": ["bmp"],
    "image/vnd.microsoft.icon": ["ico"],
    "image/heic": ["heic"],
    "image/heif": ["heif"],
    "image/avif": ["avif"],
}
_DOCUMENTS = {
    "application/pdf": ["pdf"],
    "text/plain": ["txt"],
    "text/csv": ["csv"],
    "text/tab-separated-values": ["tsv"],
    "text/markdown": ["md"],
    "application/json": ["json"],
    "text/rtf": ["rtf"],
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ["docx"],
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template": ["dotx"],
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ["xlsx"],
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template": ["xltx"],
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ["pptx"],
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow": ["ppsx"],
    "application/vnd.openxmlformats-officedocument.presentationml.template": ["potx"],
    "application/vnd.oasis.opendocument.text": ["odt"],
    "application/vnd.oasis.opendocument.text-template": ["ott"],
    "application/vnd.oasis.opendocument.spreadsheet": ["ods"],
    "application/vnd.oasis.opendocument.presentation": ["odp"],
    # Legacy Office without macros (the office inspector rejects VBA and Excel 4 macros).
    "application/msword": ["doc"],
    "application/vnd.ms-excel": ["xls"],
    "application/vnd.ms-powerpoint": ["ppt"],
}
_MEDIA = {
    "video/mp4": ["mp4", "m4v"],
    "audio/mp4": ["m4a"],
    "video/quicktime": ["mov"],
    "video/webm": ["webm"],
    "audio/webm": [],
    "video/x-matroska": ["mkv"],
    "audio/x-matroska": ["mka"],
    "audio/mpeg": ["mp3"],
    "audio/ogg": ["ogg", "oga", "opus"],
    "video/ogg": ["ogv"],
    "audio/opus": [],
    "audio/wav": ["wav"],
    "audio/flac": ["flac"],
}
_ARCHIVES = {
    "application/zip": ["zip"],
    "application/gzip": ["gz", "tgz"],
    "application/x-tar": ["tar"],
}


def _profile(*kinds: dict[str, list[str]], **settings: Any) -> Profile:
    """A profile accepting every type in ``kinds`` under its usual extensions."""
    types = [media_type for kind in kinds for media_type in kind]
    extensions = [extension for kind in kinds for exts in kind.values() for extension in exts]
    return Profile(types=types, extensions=extensions, **settings)


def builtin_profiles() -> dict[str, Profile]:
    """The profiles a fresh install has; a config file's ``[profiles.*]`` replace them all."""
    return {
        # Images (re-encoded when they carry metadata), documents, text, audio and video, and
        # archives of those; no SVG, no HTML, no executables.
        "default": _profile(_IMAGES, _DOCUMENTS, _MEDIA, _ARCHIVES, max_size="100MiB"),
        "images": _profile(_IMAGES, max_size="20MiB", limits={"allow_archives": False}),
        "documents": _profile(_DOCUMENTS, max_size="100MiB", limits={"allow_archives": False}),
        "media": _profile(_MEDIA, max_size="2GiB", limits={"allow_archives": False}),
    }


def parse_cron(expression: str) -> tuple[str, str, str, str, str]:
    """Split a five-field cron expression (minute hour day month weekday) and check each field."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("use five cron fields: minute hour day-of-month month day-of-week")
    minute, hour, day, month, weekday = fields
    # Imported here: only a config that sets schedules pays for huey's import.
    from huey import crontab as huey_crontab  # noqa: PLC0415

    try:
        huey_crontab(minute, hour, day, month, weekday, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a valid cron expression: {exc}") from None
    return minute, hour, day, month, weekday


class Schedules(BaseModel):
    """When the periodic jobs run (cron, UTC); an empty string turns one off.

    Each is safe to fire twice or on two workers at once: a run is keyed by its minute.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Unfinished tus uploads past Upload-Expires: bytes and row removed, upload.expired sent.
    expire: str = "*/15 * * * *"
    # Storage against the database: orphans both ways, reported and fixed.
    reconcile: str = "17 * * * *"
    # Quarantined files whose job was lost or whose scanner was down are queued again.
    rescan: str = "* * * * *"
    # Rejected files older than rejected_retention_seconds are deleted, status history older
    # than status_retention_days, and upload tokens and share links a week past their expiry.
    purge: str = "43 3 * * *"

    @field_validator("expire", "reconcile", "rescan", "purge")
    @classmethod
    def _cron(cls, value: str) -> str:
        if value.strip():
            parse_cron(value)
        return value.strip()


class Quotas(BaseModel):
    """What one tenant may hold and send, and how fast one key may call. 0 means no limit.

    Stored bytes and files are off by default: how much a tenant may keep is the operator's
    call. The rest are on, at numbers no honest client reaches, so a leaked key or a runaway
    script cannot fill the disk with declared uploads or take every request slot.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bytes and files a tenant keeps (quarantined, clean and rejected files alike).
    stored_bytes: ByteSize = ByteSize(0)
    stored_files: int = Field(default=0, ge=0)
    # Resumable uploads under way: their declared lengths (a deferred length counts as the
    # profile's max_size), and how many. 3,000 uploads declaring 293 GiB were once accepted
    # in 22 s; these stop that long before the disk fills.
    in_flight_bytes: ByteSize = ByteSize(50 * 1024**3)
    in_flight_uploads: int = Field(default=1000, ge=0)
    # New uploads (direct or tus) per tenant per minute, and requests per key per second.
    uploads_per_minute: int = Field(default=600, ge=0)
    requests_per_second: int = Field(default=100, ge=0)


class Tenant(BaseModel):
    """Settings of one tenant (``[tenants.<name>]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Browsers on these origins may call the API with this tenant's keys and upload tokens,
    # on top of the global cors_origins.
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ORIGIN_RE.fullmatch(value):
                raise ValueError(
                    f"{value[:200]!r} is not an origin: write it as a browser sends it, "
                    "scheme://host[:port] in lowercase, no path or trailing slash "
                    "('*' belongs in the global cors_origins only)"
                )
        return values


class _FileAndEnv(BaseSettings):
    """Sources in precedence order: init arguments, FILEGATE_* variables, the TOML file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class Settings(_FileAndEnv):
    """Every setting filegate reads. See ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="FILEGATE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("var")
    database_url: str = ""
    storage_dir: Path | None = None
    # Object storage instead of storage_dir: s3://bucket/prefix (any S3-compatible service).
    # Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or
    # AWS_PROFILE), never from this file.
    storage_url: str = ""
    # The S3 endpoint for services other than AWS (MinIO, R2, SeaweedFS, Ceph); empty: AWS.
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # path (bucket in the path, what most self-hosted services need), virtual, or auto.
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Downloads of clean files at least download_redirect_min_size big answer 302 to a
    # presigned S3 URL (valid 5 minutes), so the bytes skip the API process. S3 only; the
    # endpoint must be reachable by the clients.
    download_redirect: bool = False
    download_redirect_min_size: ByteSize = ByteSize(8 * 1024 * 1024)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # auto: readable lines on a terminal, JSON lines otherwise.
    log_format: Literal["auto", "json", "console"] = "auto"
    embedded_worker: bool = True
    # The job queue: empty = a SQLite file in data_dir (queue.db); or redis://host:port/db.
    queue_url: str = ""
    # Separates several filegate installations on one Redis (the key prefix).
    queue_name: str = Field(default="filegate", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Threads per worker process. Up to inspection_processes of them inspect at once; the one
    # more keeps webhook deliveries and schedules from waiting behind long inspections.
    worker_threads: int = Field(default=3, ge=1, le=32)
    # How often an idle worker polls a SQLite queue (Redis wakes workers at once).
    worker_poll_seconds: float = Field(default=0.25, gt=0, le=10)
    # A job held longer than this is taken to have died with its worker and is run again.
    job_lease_seconds: float = Field(default=300.0, ge=1)
    # A failed inspect or promote job runs again after this, doubling each time (3 and 5 tries).
    job_retry_seconds: float = Field(default=5.0, gt=0)
    schedules: Schedules = Field(default_factory=Schedules)
    # Rejected files (kept in quarantine for review) are purged this long after their verdict.
    rejected_retention_seconds: int = Field(default=30 * 24 * 3600, ge=0)
    # Objects without a row are only orphans once older than this (an upload may be mid-commit).
    reconcile_grace_seconds: int = Field(default=3600, ge=0)
    # Webhooks: per-attempt timeout, attempts before giving up, and the backoff base (doubles).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_retry_seconds: float = Field(default=30.0, gt=0)
    # Allow webhook targets on loopback / private / link-local addresses (off: SSRF guard).
    webhook_allow_internal: bool = False
    # A client that sends nothing for this long is cut off, so slow-loris uploads free their slot.
    upload_read_timeout: float = Field(default=60.0, gt=0)
    # A body that averages less than this over upload_read_timeout is cut off too: a client
    # trickling a byte a minute would otherwise hold its slot forever.
    upload_min_bytes_per_second: int = Field(default=1024, ge=0)
    # Seconds a client has to send the request line and headers once it connects or starts
    # a request; real clients need milliseconds.
    request_head_timeout: float = Field(default=10.0, gt=0)
    # Uploads one API process receives at once (direct uploads and tus PATCHes); past it a
    # new one gets 503 with Retry-After, so memory and threads stay bounded under a flood.
    max_concurrent_uploads: int = Field(default=64, ge=1)
    quotas: Quotas = Field(default_factory=Quotas)
    # Which answers shared caches may keep, and where purges go (docs/caching.md).
    cache: CacheSettings = Field(default_factory=CacheSettings)
    # Share links signed with these keys: "kid=secret,kid2=secret2", the first signs, all
    # verify; removing a kid revokes its links. Empty: a key kept in data_dir/link-keys (one
    # host). Like other credentials, only from the environment (FILEGATE_LINK_KEYS).
    link_keys: SecretStr = SecretStr("")
    # What this deployment is called on the status page and in filegate_build_info; empty:
    # the version plus the git commit, when there is one.
    release: str = Field(default="", max_length=128)
    # The status page (/status) answers without an admin key (GET /v1/status always needs one).
    status_public: bool = False
    # Per-minute signals and process records older than this are deleted by the purge job.
    status_retention_days: int = Field(default=14, ge=1, le=3650)
    # A log search URL with {query} where the query goes (Grafana Explore, Kibana, ...): the
    # status page links each failed job to its log lines. Empty: it shows the query only.
    log_search_url: str = Field(default="", max_length=2048)
    # `filegate worker` serves its Prometheus metrics on this port (0: off). API processes
    # serve theirs at /metrics.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # Multipart part headers are tiny in real life; a cap stops header-flood memory growth.
    max_multipart_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # ClamAV: unix:///path/clamd.sock or tcp://host:port; empty turns scanning off (said loudly).
    clamd_url: str = ""
    # true: a file is never promoted unscanned; it waits in quarantine until clamd answers.
    scanner_required: bool = False
    scanner_timeout_seconds: float = Field(default=30.0, gt=0)
    # Processes that parse uploads, per worker process: each inspects one file at a time and
    # holds 170-375 MB once warm (its peak in make bench-inspect). One per core, up to two.
    inspection_processes: int = Field(
        default_factory=lambda: min(2, os.cpu_count() or 1), ge=1, le=32
    )
    # Limits of each process that parses uploads (see inspect/sandbox.py for the reasons).
    inspection_memory_bytes: ByteSize = ByteSize(2 * 1024 * 1024 * 1024)
    inspection_cpu_seconds: int = Field(default=60, gt=0)
    inspection_timeout_seconds: float = Field(default=120.0, gt=0)
    # Resumable uploads not finished within this many seconds of their last PATCH expire (410).
    tus_expiry_seconds: int = Field(default=24 * 3600, ge=60)
    # How long a PATCH waits for another request on the same upload to let go (then 423).
    tus_lock_wait_seconds: float = Field(default=10.0, gt=0)
    # Browsers on these origins may call the API (CORS) for every tenant; empty, and no
    # tenant with cors_origins of its own, means no CORS headers at all.
    cors_origins: list[str] = Field(default_factory=list)
    # Per tenant: [tenants.<name>] cors_origins = [...] (docs/configuration.md).
    tenants: dict[str, Tenant] = Field(default_factory=dict)
    # Build absolute URLs from Forwarded / X-Forwarded-* (only behind a proxy that sets them).
    trust_forwarded_headers: bool = False
    default_profile: str = "default"
    profiles: dict[str, Profile] = Field(default_factory=builtin_profiles)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'filegate.db'}"

    @property
    def resolved_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{self.data_dir / 'queue.db'}"

    @property
    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "storage"

    def profile(self, name: str | None) -> InspectionPolicy:
        """The policy for ``name`` (or the default), or ``unknown_profile``."""
        chosen = name or self.default_profile
        profile = self.profiles.get(chosen)
        if profile is None:
            raise FilegateError(
                ErrorCode.UNKNOWN_PROFILE,
                f"Unknown profile {chosen!r}; known: {', '.join(sorted(self.profiles))}.",
            )
        return self._policies[chosen]

    @cached_property
    def _policies(self) -> dict[str, InspectionPolicy]:
        """Every profile's policy, built once: the settings are frozen, and a request asks
        for its upload's policy several times."""
        return {name: profile.policy(name) for name, profile in self.profiles.items()}

    @property
    def largest_max_size(self) -> int:
        return max(int(p.max_size) for p in self.profiles.values())

    @property
    def all_cors_origins(self) -> list[str]:
        """Every origin some tenant's browsers may use: what a preflight is answered for."""
        if "*" in self.cors_origins:
            return ["*"]
        extra = (o for t in self.tenants.values() for o in t.cors_origins)
        return sorted({*self.cors_origins, *extra})

    def cors_origins_for(self, tenant: str) -> frozenset[str]:
        """The origins whose browsers may call with ``tenant``'s credentials."""
        own = self.tenants.get(tenant)
        return frozenset(self.cors_origins) | frozenset(own.cors_origins if own else ())

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, Tenant]) -> dict[str, Tenant]:
        wrong = [name for name in tenants if not _PROFILE_RE.fullmatch(name)]
        if wrong:
            # The same rule as `filegate keys create --tenant` (services/keys.py).
            raise ValueError(f"tenant names are lowercase a-z, 0-9, - and _: {wrong[0][:64]!r}")
        return tenants


class _Outline(_FileAndEnv):
    """The same sources read loosely, so cross-field checks run even when fields are invalid."""

    model_config = SettingsConfigDict(
        env_prefix="FILEGATE_", env_nested_delimiter="__", extra="ignore"
    )

    default_profile: Any = "default"
    profiles: Any = Field(default_factory=builtin_profiles)
    database_url: Any = ""
    clamd_url: Any = ""
    scanner_required: Any = False
    queue_url: Any = ""
    storage_url: Any = ""
    download_redirect: Any = False


# pydantic-settings builds sources from the class, so the chosen file travels through here;
# it is set and read only inside load_settings().
_CONFIG_FILE: dict[str, Path | None] = {}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def setting_location(source: Path | None, *parts: object) -> str:
    """Where the setting at ``parts`` came from, as problems name it (see ``_location``)."""
    return _location(source, *parts)


def _location(source: Path | None, *parts: object) -> str:
    """Where a setting came from: the ``FILEGATE_*`` variable that set it (or a parent of it),
    since the environment wins over the file, else the config file, then the setting's path."""
    dotted = ".".join(str(part) for part in parts)
    names = {name.upper() for name in os.environ}
    for depth in range(len(parts), 0, -1):
        variable = "FILEGATE_" + "__".join(str(part) for part in parts[:depth]).upper()
        if variable in names:
            return f"${variable}" if depth == len(parts) else f"${variable}: {dotted}"
    return f"{source}: {dotted}" if source else dotted


def config_path(explicit: Path | None = None) -> Path | None:
    """The config file to read: the explicit one, ``$FILEGATE_CONFIG``, or ``./filegate.toml``."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("FILEGATE_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate settings, raising ``config_invalid`` with every problem found."""
    chosen = config_path(path)
    problems = _file_problems(chosen)
    if problems:
        raise _invalid(problems)
    _CONFIG_FILE["path"] = chosen
    try:
        outline = _Outline(**{k: v for k, v in overrides.items() if k in _Outline.model_fields})
        problems = semantic_problems(outline, chosen)
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _invalid(_validation_problems(exc, chosen) + problems) from None
    finally:
        _CONFIG_FILE.clear()
    if problems:
        raise _invalid(problems)
    return settings


def action_code_problems(
    settings: Settings, known: Collection[str], source: Path | None
) -> list[ConfigProblem]:
    """Profile actions (and overridable codes) that name no finding code: a misspelt code
    would silently do nothing, and the finding it meant would keep its default action."""
    return [
        ConfigProblem(
            _location(source, "profiles", name, *where),
            f"no finding has the code {code!r} (the codes: docs/inspection.md)",
        )
        for name, profile in settings.profiles.items()
        for code, where in [
            *((code, ("actions", code)) for code in profile.actions),
            *((code, ("overridable",)) for code in profile.overridable),
        ]
        if code not in known
    ]


def semantic_problems(outline: _Outline, source: Path | None) -> list[ConfigProblem]:
    """Problems that no single field can see, found on the loosely read values."""
    problems = []
    names = list(outline.profiles) if isinstance(outline.profiles, dict) else []
    if isinstance(outline.profiles, dict) and outline.default_profile not in names:
        problems.append(
            ConfigProblem(
                _location(source, "default_profile"),
                f"names profile {outline.default_profile!r}, which is not defined",
            )
        )
    problems.extend(
        ConfigProblem(
            _location(source, "profiles", name), "profile names are lowercase a-z, 0-9, - and _"
        )
        for name in names
        if not _PROFILE_RE.fullmatch(str(name))
    )
    clamd = outline.clamd_url
    if clamd and not str(clamd).startswith(("unix:///", "tcp://")):
        problems.append(
            ConfigProblem(
                _location(source, "clamd_url"), "use unix:///path/to/clamd.sock or tcp://host:port"
            )
        )
    if _truthy(outline.scanner_required) and not clamd:
        problems.append(
            ConfigProblem(
                _location(source, "scanner_required"), "a required scanner needs clamd_url"
            )
        )
    url = outline.database_url
    if url and not str(url).startswith(("sqlite", "postgresql")):
        problems.append(
            ConfigProblem(
                _location(source, "database_url"), "only sqlite:// and postgresql:// are supported"
            )
        )
    storage = str(outline.storage_url or "")
    if storage and not _S3_URL_RE.fullmatch(storage):
        problems.append(
            ConfigProblem(
                _location(source, "storage_url"),
                "use s3://bucket or s3://bucket/prefix (a bucket name of 3-63 lowercase "
                "letters, digits, dots and hyphens)",
            )
        )
    if _truthy(outline.download_redirect) and not storage:
        problems.append(
            ConfigProblem(
                _location(source, "download_redirect"),
                "download redirects need S3 storage (storage_url); local disk has no URLs",
            )
        )
    queue = outline.queue_url
    if queue and not str(queue).startswith(("sqlite:///", "redis://", "rediss://")):
        problems.append(
            ConfigProblem(
                _location(source, "queue_url"),
                "use sqlite:///path/to/queue.db or redis://host:port/db",
            )
        )
    return problems


def _truthy(value: Any) -> bool:
    """A loosely read boolean, as pydantic reads one (true, 1, yes, on)."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _file_problems(path: Path | None) -> list[ConfigProblem]:
    if path is None:
        return []
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        return [ConfigProblem(str(path), "config file not found")]
    except tomllib.TOMLDecodeError as exc:
        return [ConfigProblem(str(path), f"not valid TOML: {exc}")]
    except OSError as exc:
        return [ConfigProblem(str(path), f"cannot be read: {exc.strerror}")]
    return [
        ConfigProblem(
            f"{path}: {key}",
            "credentials do not belong in the config file (it is read by people and copied "
            "around): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and "
            "FILEGATE_LINK_KEYS, in the environment",
        )
        for key in document
        if _SECRET_KEY_RE.search(key)
    ]


def _validation_problems(exc: ValidationError, source: Path | None) -> list[ConfigProblem]:
    return [ConfigProblem(_location(source, *error["loc"]), error["msg"]) for error in exc.errors()]


def _invalid(problems: list[ConfigProblem]) -> FilegateError:
    return FilegateError(
        ErrorCode.CONFIG_INVALID,
        f"{len(problems)} configuration problem(s)",
        problems=problems,
    )
