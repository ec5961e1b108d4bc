"""The one base exception and the table of stable error codes.

Codes are part of the public API: clients switch on them, so a code is never renamed or reused.
Only the web layer turns a code into an HTTP status (see ``web/problems.py``).
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Every failure filegate reports, by stable code."""

    # request shape
    INVALID_REQUEST = "invalid_request"
    INVALID_FILE_ID = "invalid_file_id"
    INVALID_CURSOR = "invalid_cursor"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    MULTIPART_MALFORMED = "multipart_malformed"
    MULTIPART_BOUNDARY_MISSING = "multipart_boundary_missing"
    MULTIPART_HEADERS_TOO_LARGE = "multipart_headers_too_large"
    MULTIPART_FILE_MISSING = "multipart_file_missing"
    MULTIPART_TOO_MANY_FILES = "multipart_too_many_files"
    MULTIPART_FIELD_TOO_LARGE = "multipart_field_too_large"
    FILENAME_MISSING = "filename_missing"
    CONTENT_LENGTH_INVALID = "content_length_invalid"
    UPLOAD_INCOMPLETE = "upload_incomplete"
    UPLOAD_TIMEOUT = "upload_timeout"
    FILE_TOO_LARGE = "file_too_large"
    REQUEST_HEADERS_TOO_LARGE = "request_headers_too_large"
    REQUEST_BODY_TOO_LARGE = "request_body_too_large"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    UNKNOWN_PROFILE = "unknown_profile"
    # tus
    TUS_VERSION_UNSUPPORTED = "tus_version_unsupported"
    TUS_INVALID_HEADER = "tus_invalid_header"
    TUS_CONTENT_TYPE = "tus_content_type"
    TUS_OFFSET_MISMATCH = "tus_offset_mismatch"
    TUS_CHECKSUM_ALGORITHM = "tus_checksum_algorithm"
    TUS_CHECKSUM_MISMATCH = "tus_checksum_mismatch"
    TUS_LENGTH_REQUIRED = "tus_length_required"
    TUS_LENGTH_MISMATCH = "tus_length_mismatch"
    TUS_FINAL_IMMUTABLE = "tus_final_immutable"
    TUS_CONCAT_INVALID = "tus_concat_invalid"
    TUS_UPLOAD_NOT_FOUND = "tus_upload_not_found"
    TUS_UPLOAD_GONE = "tus_upload_gone"
    TUS_UPLOAD_STOPPED = "tus_upload_stopped"
    TUS_UPLOAD_LOCKED = "tus_upload_locked"
    # auth
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    LINK_INVALID = "link_invalid"
    LINK_GONE = "link_gone"
    LINK_NOT_ALLOWED = "link_not_allowed"
    # "token" in a name is no credential here (ruff's S105 guesses from names)
    UPLOAD_TOKEN_USED_UP = "upload_token_used_up"  # noqa: S105
    UPLOAD_TOKEN_NOT_FOUND = "upload_token_not_found"  # noqa: S105
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    # resources
    FILE_NOT_FOUND = "file_not_found"
    FILE_NOT_READY = "file_not_ready"
    FILE_REJECTED = "file_rejected"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # quotas and rate limits
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    # server side
    NOT_READY = "not_ready"
    SERVER_BUSY = "server_busy"
    SERVER_STOPPING = "server_stopping"
    STORAGE_ERROR = "storage_error"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"
    # configuration and keys (CLI)
    CONFIG_INVALID = "config_invalid"
    KEY_NOT_FOUND = "key_not_found"
    # webhooks
    WEBHOOK_URL_INVALID = "webhook_url_invalid"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_LIMIT_REACHED = "webhook_limit_reached"
    # the review console
    REVIEW_REFUSED = "review_refused"


class FilegateError(Exception):
    """A failure with a stable code, a human message and optional structured detail."""

    def __init__(self, code: ErrorCode, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def __repr__(self) -> str:
        return f"FilegateError({self.code.value!r}, {self.message!r})"
