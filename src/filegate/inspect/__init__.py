"""The pure inspection core: names, true types and verdicts. Imports only domain and errors."""

from filegate.inspect.base import Inspection
from filegate.inspect.names import INFORMATIONAL_NAME_CODES, SanitizedName, sanitize_filename
from filegate.inspect.pipeline import (
    DEFAULT_ACTIONS,
    FINDING_CODES,
    inspect_file,
    with_default_actions,
)
from filegate.inspect.sniff import detect_type, detect_type_of_bytes
from filegate.inspect.types import compatible, extensions_for, types_for_extension

__all__ = [
    "DEFAULT_ACTIONS",
    "FINDING_CODES",
    "INFORMATIONAL_NAME_CODES",
    "Inspection",
    "SanitizedName",
    "compatible",
    "detect_type",
    "detect_type_of_bytes",
    "extensions_for",
    "inspect_file",
    "sanitize_filename",
    "types_for_extension",
    "with_default_actions",
]
