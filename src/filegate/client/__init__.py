"""The filegate Python client: resumable uploads with progress, verdicts, downloads, links.

>>> from filegate.client import Client
>>> with Client("https://files.example.com", "fgk_...") as client:
...     upload = client.upload("report.pdf", profile="documents")
...     file = client.wait_for_verdict(upload.file_id)
...     print(file.state, [f.code for f in file.findings])
clean []

``AsyncClient`` has the same methods for asyncio. Both run one protocol core (sans-IO
generators in ``_tus`` and ``_api``) over httpx; this package imports neither FastAPI,
SQLAlchemy nor the inspectors. See docs/client.md.
"""

from filegate.client._client import AsyncClient, Client
from filegate.client.errors import (
    ApiError,
    ClientError,
    IntegrityError,
    ProtocolViolation,
    RetriesExhausted,
    UploadGone,
    VerdictTimeout,
)
from filegate.client.models import File, FileState, Finding, Link, Upload, UploadToken
from filegate.client.retry import RetryPolicy
from filegate.client.store import ResumeStore

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ClientError",
    "File",
    "FileState",
    "Finding",
    "IntegrityError",
    "Link",
    "ProtocolViolation",
    "ResumeStore",
    "RetriesExhausted",
    "RetryPolicy",
    "Upload",
    "UploadGone",
    "UploadToken",
    "VerdictTimeout",
]
