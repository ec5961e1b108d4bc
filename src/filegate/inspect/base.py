"""The contract every content inspector follows.

A content inspector (``ContentInspector``) is a function ``(sample, limits) -> InspectorReport``.
It reads the file at ``sample.path``, never raises on hostile input (the sandbox turns a crash
into a finding anyway), and reports findings with stable codes. It may write a sanitised copy to
``sample.sanitized_path`` (images re-encoded, active content removed) and say so in its
report; the profile's actions decide whether that copy is what gets promoted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from filegate.domain import (
    Finding,
    InspectionLimits,
    InspectionPolicy,
    SanitizeKind,
    SanitizeMode,
    SanitizeRules,
    Verdict,
)

# The thresholds live in the domain so profiles (configuration) can carry them.
Limits = InspectionLimits

log = logging.getLogger("filegate.inspect")
# A sample that names a sanitized_path and nothing else wants a copy of every kind.
_ALWAYS = SanitizeRules.every(SanitizeMode.ALWAYS)


def internal_error(inspector: str, exc: BaseException) -> Finding:
    """A crash in our own code is not the file's fault: log the traceback for us to fix, and
    fail closed with ``inspection_failed`` rather than blame the file."""
    log.error("the %s inspector crashed", inspector, exc_info=exc)
    name = type(exc).__name__
    return Finding("inspection_failed", f"the {inspector} inspector crashed ({name}): a bug")


def one_per_code(findings: list[Finding]) -> tuple[Finding, ...]:
    """One finding per code, the first one found."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.code, finding)
    return tuple(seen.values())


@dataclass(frozen=True, slots=True)
class Sample:
    """What an inspector may know about the file it inspects."""

    path: str
    size: int
    detected_type: str
    extension: str | None
    # Where an inspector may write a sanitised copy; None when sanitising is not wanted.
    sanitized_path: str | None = None
    # When each kind's inspector writes that copy (only read when sanitized_path is set).
    sanitize: SanitizeRules = _ALWAYS
    # How deep inside archives this sample sits (0 for the upload itself).
    depth: int = 0

    def sanitize_mode(self, kind: SanitizeKind) -> SanitizeMode:
        """When the inspector of ``kind`` writes a copy; NEVER when none may be written."""
        if self.sanitized_path is None:
            return SanitizeMode.NEVER
        return self.sanitize.mode(kind)


@dataclass(frozen=True, slots=True)
class InspectorReport:
    """What one content inspector found, and the sanitised copy it wrote, if any."""

    findings: tuple[Finding, ...] = ()
    # True when the inspector wrote a sanitised copy to ``sample.sanitized_path``.
    sanitized: bool = False
    sanitized_type: str | None = None
    # What the copy changed, for people: "re-encoded", "removed EXIF, XMP".
    changes: tuple[str, ...] = ()


NO_FINDINGS = InspectorReport()

ContentInspector = Callable[[Sample, Limits], InspectorReport]


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """One file to inspect, as sent to the sandbox process."""

    path: str
    original_name: str | None
    declared_type: str | None
    size: int
    policy: InspectionPolicy
    sanitized_path: str | None = None


@dataclass(frozen=True, slots=True)
class Inspection:
    """The verdict on one file, the sanitised name to show for it, and, when a sanitised copy
    was written to ``sanitized_path``, its type and what it changed."""

    verdict: Verdict
    display_name: str
    sanitized_type: str | None = None
    changes: tuple[str, ...] = ()
