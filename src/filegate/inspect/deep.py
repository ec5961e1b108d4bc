"""Dispatch to the content inspectors by true type: images, SVG, PDF, office, media, archives."""

from __future__ import annotations

from filegate.domain import InspectionPolicy
from filegate.inspect import archives, images, media, office, pdf, svg
from filegate.inspect.archives import MemberInspector
from filegate.inspect.base import ContentInspector, InspectorReport, Sample

IMAGE_TYPES = images.IMAGE_TYPES
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
RTF_TYPES = frozenset({"text/rtf"})

DEEP_CODES: dict[str, str] = {
    **archives.CODES,
    **images.CODES,
    **svg.CODES,
    **pdf.CODES,
    **office.CODES,
    **media.CODES,
}
# Reported so people know what happened, but harmless: accepted unless a profile says not.
INFORMATIONAL_CODES: frozenset[str] = (
    images.INFORMATIONAL_CODES | pdf.INFORMATIONAL_CODES | office.INFORMATIONAL_CODES
)


# Each content inspector and the true types it judges; archives are recognised by structure.
_BY_TYPE: tuple[tuple[frozenset[str], ContentInspector], ...] = (
    (IMAGE_TYPES, images.inspect_image),
    (SVG_TYPES, svg.inspect_svg),
    (PDF_TYPES, pdf.inspect_pdf),
    (OLE_TYPES | SYLK_TYPES | RTF_TYPES, office.inspect_office),
    (media.MEDIA_TYPES, media.inspect_media),
)


def inspect_deep(
    sample: Sample, policy: InspectionPolicy, inspect_member: MemberInspector
) -> InspectorReport:
    """The findings (and sanitised copy) of the inspectors for ``sample``'s type, if any."""
    for types, inspector in _BY_TYPE:
        if sample.detected_type in types:
            return inspector(sample, policy.limits)
    if archives.archive_kind(sample) is not None:
        return _archive(sample, policy, inspect_member)
    return InspectorReport()


def _archive(
    sample: Sample, policy: InspectionPolicy, inspect_member: MemberInspector
) -> InspectorReport:
    structure = archives.inspect_archive(sample, policy.limits, inspect_member)
    if not archives.is_office_container(sample.path):
        return structure
    content = office.inspect_office(sample, policy.limits)
    return InspectorReport(findings=(*structure.findings, *content.findings))
