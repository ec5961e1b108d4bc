"""The contract every content inspector follows.

An inspector is a function ``(sample, limits) -> Outcome``. It reads the file at
``sample.path``, never raises on hostile input (the sandbox turns a crash into a finding
anyway), and reports findings with stable codes. It may write a sanitised copy to
``sample.sanitized_path`` (images re-encoded, active content removed) and say so in the
outcome; the profile's actions decide whether that copy is what gets promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from filegate.domain import Finding, InspectionLimits, InspectionPolicy, Verdict

# The thresholds live in the domain so profiles (configuration) can carry them.
Limits = InspectionLimits


@dataclass(frozen=True, slots=True)
class Sample:
    """What an inspector may know about the file it inspects."""

    path: str
    size: int
    detected_type: str
    extension: str | None
    # Where an inspector may write a sanitised copy; None when sanitising is not wanted.
    sanitized_path: str | None = None
    # How deep inside archives this sample sits (0 for the upload itself).
    depth: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    findings: tuple[Finding, ...] = ()
    # True when the inspector wrote a sanitised copy to ``sample.sanitized_path``.
    sanitized: bool = False
    sanitized_type: str | None = None


NO_FINDINGS = Outcome()

Inspector = Callable[[Sample, Limits], Outcome]


@dataclass(frozen=True, slots=True)
class Job:
    """One file to inspect, as sent to the sandbox process."""

    path: str
    original_name: str | None
    declared_type: str | None
    size: int
    policy: InspectionPolicy
    sanitized_path: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict; ``sanitized_type`` is set when a sanitised copy was written."""

    verdict: Verdict
    display_name: str
    sanitized_type: str | None = None
