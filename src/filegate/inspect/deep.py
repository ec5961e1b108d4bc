"""Dispatch to the content inspectors by true type: images, SVG, PDF, office, archives."""

from __future__ import annotations

from collections.abc import Callable

from filegate.domain import InspectionPolicy
from filegate.inspect import archives, images, office, pdf, svg
from filegate.inspect.base import Outcome, Sample

MemberInspector = Callable[[str, str, int], Outcome]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
SVG_TYPES = frozenset({"image/svg+xml"})
PDF_TYPES = frozenset({"application/pdf"})
# Legacy Office files are OLE compound documents; libmagic names them several ways.
OLE_TYPES = frozenset(
    {
        "application/x-ole-storage",
        "application/cdfv2",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.ms-office",
        "application/encrypted",
    }
)
SYLK_TYPES = frozenset({"application/x-sylk", "text/x-sylk"})

DEEP_CODES: dict[str, str] = {
    **archives.CODES,
    **images.CODES,
    **svg.CODES,
    **pdf.CODES,
    **office.CODES,
}
# Reported so people know what happened, but harmless: accepted unless a profile says not.
INFORMATIONAL_CODES: frozenset[str] = (
    images.INFORMATIONAL_CODES | pdf.INFORMATIONAL_CODES | office.INFORMATIONAL_CODES
)


def inspect_deep(
    sample: Sample, policy: InspectionPolicy, inspect_member: MemberInspector
) -> Outcome:
    """The findings (and sanitised copy) of the inspectors for ``sample``'s type, if any."""
    limits = policy.limits
    detected = sample.detected_type
    if detected in IMAGE_TYPES:
        return images.inspect_image(sample, limits)
    if detected in SVG_TYPES:
        return svg.inspect_svg(sample, limits)
    if detected in PDF_TYPES:
        return pdf.inspect_pdf(sample, limits)
    if detected in OLE_TYPES or detected in SYLK_TYPES:
        return office.inspect_office(sample, limits)
    if archives.archive_kind(sample) is not None:
        return _archive(sample, policy, inspect_member)
    return Outcome()


def _archive(sample: Sample, policy: InspectionPolicy, inspect_member: MemberInspector) -> Outcome:
    structure = archives.inspect_archive(sample, policy.limits, inspect_member)
    if not archives.is_office_container(sample.path):
        return structure
    content = office.inspect_office(sample, policy.limits)
    return Outcome(findings=(*structure.findings, *content.findings))
