"""Inspect one stored file: name, size, extension and true type, into one verdict.

Every check runs and adds findings; none stops the others, and hostile input never raises.
The profile (``InspectionPolicy``) decides which findings reject.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from filegate.domain import Action, Finding, InspectionPolicy, Verdict
from filegate.inspect.names import INFORMATIONAL_NAME_CODES, NAME_CODES, sanitize_filename
from filegate.inspect.sniff import detect_type
from filegate.inspect.types import compatible, matches, normalise

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
        "inspection_failed": "The content could not be inspected; the file fails closed.",
    }
)

FINDING_CODES: dict[str, str] = {**NAME_CODES, **CONTENT_CODES}

# Name clean-ups say what was changed, not that the file is bad, and a client's declared type
# is never served (the detected one is) and browsers guess it badly: these pass unless a
# profile's own ``actions`` says otherwise. Every other finding rejects.
DEFAULT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    dict.fromkeys([*sorted(INFORMATIONAL_NAME_CODES), "declared_type_mismatch"], Action.ACCEPT)
)


@dataclass(frozen=True, slots=True)
class Inspection:
    """The verdict on one file and the sanitised name to show for it."""

    verdict: Verdict
    display_name: str


def inspect_file(
    path: str | os.PathLike[str],
    *,
    original_name: str | None,
    declared_type: str | None,
    size: int,
    policy: InspectionPolicy,
) -> Inspection:
    """Run every check on the file at ``path`` and decide with ``policy`` (plus defaults)."""
    name = sanitize_filename(original_name)
    detected, content = _inspect_content(path, size, name.extension, declared_type, policy)
    findings = (
        *name.findings,
        *_size_findings(size, policy),
        *_extension_findings(name.extension, policy),
        *content,
    )
    verdict = Verdict.decide(with_default_actions(policy), findings, detected)
    return Inspection(verdict=verdict, display_name=name.display)


def with_default_actions(policy: InspectionPolicy) -> InspectionPolicy:
    """``policy`` with ``DEFAULT_ACTIONS`` underneath its own explicit actions."""
    return dataclasses.replace(policy, actions={**DEFAULT_ACTIONS, **policy.actions})


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
    extension: str | None,
    declared_type: str | None,
    policy: InspectionPolicy,
) -> tuple[str | None, tuple[Finding, ...]]:
    if size == 0:
        return EMPTY_TYPE, ()
    try:
        detected = detect_type(path)
    except Exception:  # a file we cannot read or parse fails closed instead of crashing the job
        return None, (Finding("inspection_failed", "the content type could not be determined"),)
    return detected, tuple(_type_findings(detected, extension, declared_type, policy))


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
