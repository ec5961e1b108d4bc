"""``Client`` and ``AsyncClient``: thin shells that run the shared protocol core over httpx."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import httpx

from filegate import __version__
from filegate.client import _api, _tus
from filegate.client._calls import Session
from filegate.client._drivers import run, run_async
from filegate.client._effects import Steps
from filegate.client.models import File, Link, Upload, UploadToken
from filegate.client.retry import RetryPolicy
from filegate.client.store import ResumeStore

T = TypeVar("T")
# Connecting is quick or hopeless; a PATCH may wait seconds for the server's fsync.
CONNECT_TIMEOUT = 10.0


class _Shared:
    """Construction and argument handling both clients share."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        retry: RetryPolicy | None = None,
        resume_store: ResumeStore | str | os.PathLike[str] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self._session = Session(base_url.rstrip("/"), retry or RetryPolicy())
        self._store = (
            resume_store if isinstance(resume_store, ResumeStore) else ResumeStore(resume_store)
        )
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"filegate-client/{__version__}",
        }

    @property
    def base_url(self) -> str:
        return self._session.base_url

    @property
    def resume_store(self) -> ResumeStore:
        return self._store

    def _job(
        self,
        *,
        source: _tus.Source,
        profile: str | None,
        metadata: Mapping[str, str] | None,
        chunk_size: int,
        progress: _tus.Progress | None,
        resume: bool,
    ) -> _tus.UploadJob:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        header = _tus.metadata_header(source.name, profile, metadata or {})
        store = self._store if resume else None
        return _tus.UploadJob(source, header, chunk_size, progress, store)

    @staticmethod
    def _link_body(
        seconds: int | None, disposition: str, max_downloads: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"disposition": disposition}
        if seconds is not None:
            body["seconds"] = seconds
        if max_downloads is not None:
            body["max_downloads"] = max_downloads
        return body

    @staticmethod
    def _token_body(**fields: Any) -> dict[str, Any]:
        return {name: value for name, value in fields.items() if value is not None}


class Client(_Shared):
    """A blocking filegate client; ``token`` is an API key (``fgk_``) or upload token (``fgt_``).

    >>> with Client("https://files.example.com", os.environ["FILEGATE_TOKEN"]) as client:
    ...     upload = client.upload("report.pdf", profile="documents")
    ...     file = client.wait_for_verdict(upload.file_id, timeout=120)
    ...     if file.state == "clean":
    ...         client.download(file.id, "copy.pdf")
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        resume_store: ResumeStore | str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, retry=retry, resume_store=resume_store)
        self._http = httpx.Client(
            headers=self._headers,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    def _run(self, steps: Steps[T]) -> T:
        return run(self._http, steps)

    def upload(
        self,
        file: _tus.Target,
        *,
        profile: str | None = None,
        metadata: Mapping[str, str] | None = None,
        filename: str | None = None,
        chunk_size: int = _tus.DEFAULT_CHUNK_SIZE,
        progress: _tus.Progress | None = None,
        resume: bool = True,
    ) -> Upload:
        """Upload a path or seekable binary file over tus; resumes an earlier run of a path.

        ``progress(sent, total)`` is called as bytes leave (``sent`` may go back after a
        retry). ``metadata`` pairs go to the server as tus ``Upload-Metadata``.

        >>> upload = client.upload("big.iso", profile="media", progress=print)
        >>> upload.file_id, upload.resumed_from
        ('01JF3M8C6Q2B7W0RJ5X8Y9Z1AB', 0)
        """
        source = _tus.Source.open(file, filename)
        try:
            job = self._job(
                source=source,
                profile=profile,
                metadata=metadata,
                chunk_size=chunk_size,
                progress=progress,
                resume=resume,
            )
            return self._run(_tus.upload(self._session, job))
        finally:
            source.close()

    def get_file(self, file_id: str) -> File:
        """The file's record and, once decided, its verdict and findings."""
        return self._run(_api.get_file(self._session, file_id))

    def wait_for_verdict(self, file_id: str, timeout: float = 300.0) -> File:
        """Poll until the file is ``clean`` or ``rejected``; ``VerdictTimeout`` if not in time.

        >>> file = client.wait_for_verdict(upload.file_id, timeout=60)
        >>> [finding.code for finding in file.findings]
        []
        """
        return self._run(_api.wait_for_verdict(self._session, file_id, timeout))

    def download(self, file_id: str, dest: str | os.PathLike[str]) -> Path:
        """Stream a clean file to ``dest`` (written whole or not at all; sha256 checked)."""
        return self._run(_api.download(self._session, file_id, Path(dest)))

    def create_link(
        self,
        file_id: str,
        *,
        seconds: int | None = None,
        disposition: Literal["attachment", "inline"] = "attachment",
        max_downloads: int | None = None,
    ) -> Link:
        """A share link to a clean file: anyone with the URL may download it until it expires.

        >>> client.create_link(file.id, seconds=3600, max_downloads=1).url
        'https://files.example.com/v1/share/01JF.../...'
        """
        body = self._link_body(seconds, disposition, max_downloads)
        return self._run(_api.create_link(self._session, file_id, body))

    def create_upload_token(
        self,
        *,
        profile: str | None = None,
        max_size: int | None = None,
        max_files: int | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_in: int | None = None,
    ) -> UploadToken:
        """Mint a short-lived upload token for a browser (needs a key with ``upload`` scope).

        >>> grant = client.create_upload_token(profile="images", max_files=3, expires_in=900)
        >>> grant.token.startswith("fgt_")
        True
        """
        body = self._token_body(
            profile=profile,
            max_size=max_size,
            max_files=max_files,
            metadata=dict(metadata) if metadata is not None else None,
            expires_in=expires_in,
        )
        return self._run(_api.create_upload_token(self._session, body))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Shared):
    """The asyncio twin of ``Client``: the same methods, awaited, on the same protocol core.

    >>> async with AsyncClient("https://files.example.com", token) as client:
    ...     upload = await client.upload("report.pdf")
    ...     file = await client.wait_for_verdict(upload.file_id)
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        resume_store: ResumeStore | str | os.PathLike[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, token, retry=retry, resume_store=resume_store)
        self._http = httpx.AsyncClient(
            headers=self._headers,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    async def _run(self, steps: Steps[T]) -> T:
        return await run_async(self._http, steps)

    async def upload(
        self,
        file: _tus.Target,
        *,
        profile: str | None = None,
        metadata: Mapping[str, str] | None = None,
        filename: str | None = None,
        chunk_size: int = _tus.DEFAULT_CHUNK_SIZE,
        progress: _tus.Progress | None = None,
        resume: bool = True,
    ) -> Upload:
        """See ``Client.upload``; file reads and hashing run in a worker thread."""
        source = _tus.Source.open(file, filename)
        try:
            job = self._job(
                source=source,
                profile=profile,
                metadata=metadata,
                chunk_size=chunk_size,
                progress=progress,
                resume=resume,
            )
            return await self._run(_tus.upload(self._session, job))
        finally:
            source.close()

    async def get_file(self, file_id: str) -> File:
        """See ``Client.get_file``."""
        return await self._run(_api.get_file(self._session, file_id))

    async def wait_for_verdict(
        self,
        file_id: str,
        timeout: float = 300.0,  # noqa: ASYNC109 - the same signature as Client's
    ) -> File:
        """See ``Client.wait_for_verdict``."""
        return await self._run(_api.wait_for_verdict(self._session, file_id, timeout))

    async def download(self, file_id: str, dest: str | os.PathLike[str]) -> Path:
        """See ``Client.download``."""
        return await self._run(_api.download(self._session, file_id, Path(dest)))

    async def create_link(
        self,
        file_id: str,
        *,
        seconds: int | None = None,
        disposition: Literal["attachment", "inline"] = "attachment",
        max_downloads: int | None = None,
    ) -> Link:
        """See ``Client.create_link``."""
        body = self._link_body(seconds, disposition, max_downloads)
        return await self._run(_api.create_link(self._session, file_id, body))

    async def create_upload_token(
        self,
        *,
        profile: str | None = None,
        max_size: int | None = None,
        max_files: int | None = None,
        metadata: Mapping[str, str] | None = None,
        expires_in: int | None = None,
    ) -> UploadToken:
        """See ``Client.create_upload_token``."""
        body = self._token_body(
            profile=profile,
            max_size=max_size,
            max_files=max_files,
            metadata=dict(metadata) if metadata is not None else None,
            expires_in=expires_in,
        )
        return await self._run(_api.create_upload_token(self._session, body))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
