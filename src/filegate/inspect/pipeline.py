"""Inspect one stored file: name, size, extension and true type, into one verdict.

Every check runs and adds findings; none stops the others, and hostile input never raises.
The profile (``InspectionPolicy``) decides which findings reject.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from filegate.domain import Action, Finding, InspectionPolicy, Verdict
from filegate.inspect import antivirus, archives, code, packages, sandbox
from filegate.inspect.base import Inspection, InspectorReport, Sample, SandboxRequest
from filegate.inspect.deep import DEEP_CODES, INFORMATIONAL_CODES, inspect_deep
from filegate.inspect.names import INFORMATIONAL_NAME_CODES, NAME_CODES, sanitize_filename
from filegate.inspect.sniff import detect_type, detect_type_with_model
from filegate.inspect.types import MEDIA_TYPES, compatible, family, matches, normalise

# What libmagic calls a zero-byte file; an empty file is never sniffed.
EMPTY_TYPE = "application/x-empty"
# Declared types that say nothing: browsers send them for anything they do not recognise.
_UNINFORMATIVE_DECLARED = frozenset({"", "application/octet-stream"})
# RFC 6838: type and subtype are restricted names of at most 127 characters. Anything else
# is not echoed back in a message.
_MEDIA_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")

CONTENT_CODES: Mapping[str, str] = MappingProxyType(
    {
        "empty_file": "The file has no bytes and the profile does not allow empty files.",
        "file_too_large": "The file is larger than the profile's maximum size.",
        "extension_not_allowed": "The name has no extension, or one the profile does not accept.",
        "type_not_allowed": "The content's true type is not one the profile accepts.",
        "type_mismatch": "The content's true type does not match the name's extension.",
        "declared_type_mismatch": "The type the client declared differs from the true type.",
        "type_disagreement": "The two content detectors (libmagic and Magika) see different "
        "kinds of file: one of them is being fooled.",
    }
)
# A Magika verdict below this confidence is a guess, not evidence against libmagic.
MODEL_CONFIDENCE = 0.9

FINDING_CODES: dict[str, str] = {
    **NAME_CODES,
    **CONTENT_CODES,
    **code.CODES,
    **sandbox.CODES,
    **antivirus.CODES,
    **DEEP_CODES,
}

# Name clean-ups say what was changed, not that the file is bad, and a client's declared type
# is never served (the detected one is) and browsers guess it badly: these pass unless a
# profile's own ``actions`` says otherwise. Every other finding rejects.
DEFAULT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    dict.fromkeys(
        [
            *sorted(INFORMATIONAL_NAME_CODES),
            *sorted(INFORMATIONAL_CODES),
            "declared_type_mismatch",
        ],
        Action.ACCEPT,
    )
)


# The parser libraries the inspectors import where they use them, so that the API process,
# which imports this module for its code tables, never loads them (tests/unit/
# test_api_process_imports.py). The sandbox child loads them before it says it is ready, so
# no job's clock pays for them.
PARSERS = ("PIL.Image", "pikepdf", "filegate.inspect._oletools", "magic", "py_svg_hush")


def preload() -> None:
    """Import the parser libraries (in the sandbox child, before its first job)."""
    for name in PARSERS:
        importlib.import_module(name)


def run_job(job: SandboxRequest) -> Inspection:
    """The sandbox child's entry point."""
    return inspect_file(
        job.path,
        original_name=job.original_name,
        declared_type=job.declared_type,
        size=job.size,
        policy=job.policy,
        sanitized_path=job.sanitized_path,
    )


def inspect_file(
    path: str | os.PathLike[str],
    *,
    original_name: str | None,
    declared_type: str | None,
    size: int,
    policy: InspectionPolicy,
    sanitized_path: str | None = None,
    depth: int = 0,
) -> Inspection:
    """Run every check on the file at ``path`` and decide with ``policy`` (plus defaults)."""
    name = sanitize_filename(original_name)
    findings: list[Finding] = [
        *name.findings,
        *_size_findings(size, policy),
        *_extension_findings(name.extension, policy),
    ]
    detected, outcome = _inspect_content(
        path,
        size,
        extension=name.extension,
        declared_type=declared_type,
        original_name=original_name,
        policy=policy,
        sanitized_path=sanitized_path,
        depth=depth,
    )
    findings.extend(outcome.findings)
    verdict = Verdict.decide(with_default_actions(policy), findings, detected)
    if not outcome.sanitized:
        return Inspection(verdict=verdict, display_name=name.display)
    return Inspection(verdict, name.display, outcome.sanitized_type, outcome.changes)


def with_default_actions(policy: InspectionPolicy) -> InspectionPolicy:
    """``policy`` with ``DEFAULT_ACTIONS`` (adjusted by its limits) under its own actions."""
    defaults = dict(DEFAULT_ACTIONS)
    if not policy.limits.allow_pdf_links:
        defaults["pdf_link"] = Action.REJECT
    if policy.limits.allow_macros:
        defaults["office_macros"] = Action.ACCEPT
    return dataclasses.replace(policy, actions={**defaults, **policy.actions})


def explain(policy: InspectionPolicy, finding: Finding) -> tuple[Action, str]:
    """What ``policy`` does with ``finding`` and the setting that decides it, in the words of
    the configuration file, so a false positive can be overridden for one profile."""
    where = f"profiles.{policy.name}"
    own = policy.actions.get(finding.code)
    if own is not None:
        return own, f'{where}.actions.{finding.code} = "{own}"'
    action = with_default_actions(policy).action_for(finding)
    if finding.code == "pdf_link" and not policy.limits.allow_pdf_links:
        return action, f"{where}.limits.allow_pdf_links = false"
    if finding.code == "office_macros" and policy.limits.allow_macros:
        return action, f"{where}.limits.allow_macros = true"
    if finding.code in DEFAULT_ACTIONS:
        return action, "built-in default: informational, accepted unless a profile rejects it"
    return action, (
        f'built-in default: every finding rejects; set {where}.actions.{finding.code} = "accept"'
        " to accept it"
    )


def _size_findings(size: int, policy: InspectionPolicy) -> Iterator[Finding]:
    if size == 0 and not policy.allow_empty:
        yield Finding("empty_file", "the file is empty")
    if size > policy.max_size:
        yield Finding("file_too_large", f"the file has {size} bytes, over {policy.max_size}")


def _extension_findings(extension: str | None, policy: InspectionPolicy) -> Iterator[Finding]:
    if extension is None:
        yield Finding("extension_not_allowed", "the name has no extension")
    elif extension not in policy.extensions:
        yield Finding("extension_not_allowed", f"the extension .{extension} is not accepted")


def _inspect_content(
    path: str | os.PathLike[str],
    size: int,
    *,
    extension: str | None,
    declared_type: str | None,
    original_name: str | None,
    policy: InspectionPolicy,
    sanitized_path: str | None,
    depth: int,
) -> tuple[str | None, InspectorReport]:
    if size == 0:
        return EMPTY_TYPE, InspectorReport()
    try:
        model = detect_type_with_model(path)
        detected = _prose(_true_type(path, detect_type(path)), model)
    except Exception:  # a file we cannot read fails closed instead of crashing the job
        failed = Finding("inspection_failed", "the content type could not be determined")
        return None, InspectorReport(findings=(failed,))
    findings = [
        *_type_findings(detected, extension, declared_type, policy),
        *_model_findings(detected, model),
    ]
    seen = frozenset({detected} | ({model[0]} if model and model[1] >= MODEL_CONFIDENCE else set()))
    findings.extend(code.inspect_code(os.fspath(path), seen, original_name))
    sample = Sample(
        path=os.fspath(path),
        size=size,
        detected_type=detected,
        extension=extension,
        sanitized_path=sanitized_path if policy.sanitize.any else None,
        sanitize=policy.sanitize,
        depth=depth,
    )
    deep = inspect_deep(sample, policy, _member_inspector(policy, original_name))
    return detected, dataclasses.replace(deep, findings=(*findings, *deep.findings))


_PACKAGE_KINDS = ("openxmlformats", "opendocument", "macroenabled")
# What libmagic says of an Office file it recognised only in part: its entry order (OOXML,
# ODF) or stream names (OLE) did not match its signatures, or named only the family.
_PACKAGE_GUESSES = frozenset(
    {
        "application/zip",
        "application/octet-stream",
        *(t for t in MEDIA_TYPES if any(k in t for k in _PACKAGE_KINDS)),
    }
)
_OLE_GUESSES = frozenset(
    {
        "application/x-ole-storage",
        "application/cdfv2",
        "application/vnd.ms-office",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
    }
)


def _true_type(path: str | os.PathLike[str], detected: str) -> str:
    """libmagic's answer, made exact for Office files from their own structure."""
    if detected in _OLE_GUESSES:
        return packages.ole_type(path) or detected
    if detected in _PACKAGE_GUESSES and archives.is_office_container(path):
        return packages.package_type(path) or detected
    return detected


def _prose(detected: str, model: tuple[str, float] | None) -> str:
    """libmagic calls text a script on a few keywords at line starts, so a README that quotes
    Python is "Python" to it; when Magika, trained on real files, is sure it is Markdown, it is.
    (Magika's own verdict on code still reaches the code inspector.)"""
    if model is None or model[1] < MODEL_CONFIDENCE or model[0] != "text/markdown":
        return detected
    return model[0] if detected in code.SCRIPT_TYPES else detected


_COMPRESSION_SUFFIXES = (".gz", ".tgz", ".bz2", ".xz")


def _strip_compression(name: str | None) -> str | None:
    if name is None:
        return None
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            stem = name[: -len(suffix)]
            return stem + ".tar" if suffix == ".tgz" else stem
    return name


# Magika knows no HEIF or AVIF: to it every ISO base media file is an MP4. libmagic reads the
# brand, and the image inspector decodes the pictures, so this pair is no disagreement.
_MODEL_BLIND_SPOTS = frozenset(
    {("image/heic", "video/mp4"), ("image/heif", "video/mp4"), ("image/avif", "video/mp4")}
)


def _model_findings(detected: str, model: tuple[str, float] | None) -> Iterator[Finding]:
    if model is None or model[1] < MODEL_CONFIDENCE or (detected, model[0]) in _MODEL_BLIND_SPOTS:
        return
    ours, theirs = family(detected), family(model[0])
    if ours is not None and theirs is not None and ours != theirs:
        message = f"libmagic sees {detected} but Magika sees {model[0]}"
        yield Finding("type_disagreement", message)


def _member_inspector(policy: InspectionPolicy, outer_name: str | None) -> Any:
    """Archive members go through this same pipeline, one level deeper."""

    def inspect_member(path: str, member_name: str, depth: int) -> InspectorReport:
        size = os.path.getsize(path)
        # gzip/bzip2/xz hold one unnamed member: "notes.txt.gz" holds "notes.txt".
        name = member_name or _strip_compression(outer_name)
        result = inspect_file(
            path,
            original_name=name,
            declared_type=None,
            size=size,
            policy=policy,
            depth=depth,
        )
        rejecting = [
            f
            for f in result.verdict.findings
            if with_default_actions(policy).action_for(f) is Action.REJECT
        ]
        return InspectorReport(findings=tuple(rejecting))

    return inspect_member


def _type_findings(
    detected: str, extension: str | None, declared_type: str | None, policy: InspectionPolicy
) -> Iterator[Finding]:
    if not matches(detected, policy.types):
        yield Finding("type_not_allowed", f"content is {detected}, which is not accepted")
    # Without an extension there is nothing to contradict; extension_not_allowed covers it.
    if extension is not None and not compatible(detected, extension):
        yield Finding("type_mismatch", f"content is {detected} but the name says .{extension}")
    claimed = _declared(declared_type)
    if claimed is not None and not matches(detected, [claimed]):
        shown = claimed if _MEDIA_TYPE_RE.fullmatch(claimed) else "a malformed type"
        message = f"content is {detected} but the client declared {shown}"
        yield Finding("declared_type_mismatch", message)


def _declared(declared_type: str | None) -> str | None:
    claimed = normalise(declared_type or "")
    return None if claimed in _UNINFORMATIVE_DECLARED else claimed
