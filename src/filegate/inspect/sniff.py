"""The true type of some bytes, from their content (libmagic), never from the name."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from filegate.inspect.types import normalise

# libmagic's signatures sit at the start of a file, and its own read limit is several MiB.
# Reading a fixed head ourselves and calling from_buffer makes a 10 GiB upload cost the same as
# a 1 MiB one, and libmagic never opens or follows anything on the filesystem itself.
HEAD_BYTES = 1024 * 1024
# Reported when libmagic returns nothing at all; the least privileged type there is.
UNKNOWN_TYPE = "application/octet-stream"


class _Sniffer:
    """One libmagic handle per process, used by one thread at a time (handles are not
    thread-safe, and loading the magic database costs milliseconds each time)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # Also run in a forked child: the parent's lock may be held by a thread that is gone.
        self._lock = threading.Lock()
        self._handle: Any = None

    def from_buffer(self, head: bytes) -> str:
        with self._lock:
            if self._handle is None:
                import magic  # noqa: PLC0415 - libmagic loads where files are inspected

                self._handle = magic.Magic(mime=True)
            return str(self._handle.from_buffer(head) or "")


_SNIFFER = _Sniffer()
os.register_at_fork(after_in_child=_SNIFFER.reset)


def detect_type(path: str | os.PathLike[str]) -> str:
    """The media type of the file at ``path``, judged from its first ``HEAD_BYTES``."""
    with open(path, "rb") as file:
        head = file.read(HEAD_BYTES)
    return detect_type_of_bytes(head)


def detect_type_of_bytes(data: bytes) -> str:
    """The media type of ``data`` (only its first ``HEAD_BYTES`` are looked at)."""
    return normalise(_SNIFFER.from_buffer(data[:HEAD_BYTES])) or UNKNOWN_TYPE


class _Model:
    """Google's Magika, a second detector independent of libmagic's signatures.

    Its model ships inside the wheel and runs offline; it is loaded once per process, on first
    use (about 0.2 s), and only ever in the inspection sandbox.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._magika: Any = None

    def identify(self, path: str | os.PathLike[str]) -> tuple[str, float] | None:
        with self._lock:
            if self._magika is None:
                from magika import Magika  # noqa: PLC0415 - heavy; the web process never needs it

                self._magika = _single_threaded(Magika())
            result = self._magika.identify_path(Path(path))
        if not result.ok:
            return None
        return normalise(result.output.mime_type), float(result.score)


def _single_threaded(magika: Any) -> Any:
    """Run Magika's model on one thread that sleeps when idle.

    Magika's own session uses onnxruntime's defaults: a thread per core that spin-waits between
    runs. Here one call runs at a time (the lock above) in a child that shares the machine with
    the uploads it inspects, so the spinning only took CPU from them: the sandbox child used
    25 ms of CPU per 1 MiB file under the concurrent benchmark. (``_onnx_session`` and
    ``_model_path`` are Magika's; the version is pinned in uv.lock and tests/unit check this.)
    """
    import onnxruntime  # noqa: PLC0415 - only where Magika is loaded

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    magika._onnx_session = onnxruntime.InferenceSession(
        str(magika._model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return magika


_MODEL = _Model()


def detect_type_with_model(path: str | os.PathLike[str]) -> tuple[str, float] | None:
    """Magika's media type for the file and its confidence, or None if it could not tell."""
    return _MODEL.identify(path)
