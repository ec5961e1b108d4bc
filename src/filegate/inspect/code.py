"""Executables, scripts, server-side code, pickles and server configuration files.

None of these belongs in an upload unless a profile explicitly accepts its finding: they run
on a desktop, in a browser, on a web server, or inside ``pickle.load``.
"""

from __future__ import annotations

import os

from filegate.domain import Finding

CODES: dict[str, str] = {
    "executable": "A native program or library (PE, ELF, Mach-O).",
    "script": "Script or server-side code (shell, PHP, Python, Perl, Ruby, JavaScript, batch).",
    "active_content": "HTML, XHTML or other markup that runs script in a browser.",
    "pickle": "A Python pickle, which runs code when loaded.",
    "server_config": "A file that reconfigures web servers (.htaccess, .user.ini, web.config).",
}

EXECUTABLE_TYPES = frozenset(
    {
        "application/x-dosexec",
        "application/x-executable",
        "application/x-pie-executable",
        "application/x-sharedlib",
        "application/x-mach-binary",
        "application/x-elf",
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
        "application/x-coff",
        "application/java-archive",
        "application/x-java-applet",
    }
)
SCRIPT_TYPES = frozenset(
    {
        "text/x-php",
        "application/x-php",
        "application/x-httpd-php",
        "text/x-shellscript",
        "application/x-sh",
        "application/x-shellscript",
        "text/x-python",
        "text/x-script.python",
        "application/x-python-code",
        "text/x-perl",
        "text/x-ruby",
        "application/javascript",
        "text/javascript",
        "application/x-javascript",
        "text/x-msdos-batch",
        "application/x-bat",
        "text/x-powershell",
        "application/x-powershell",
        "text/x-vbscript",
        "text/x-asp",
        "text/x-jsp",
    }
)
ACTIVE_MARKUP_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/x-httpd-php"})
SERVER_CONFIG_NAMES = frozenset(
    {".htaccess", ".htpasswd", ".user.ini", "php.ini", "web.config", ".htgroup"}
)
# Pickle protocols 2-5 open with PROTO (0x80) and a version byte, and end with STOP (".").
_PICKLE_HEAD = tuple(bytes([0x80, version]) for version in range(2, 6))


def inspect_code(
    path: str, detected_types: frozenset[str], original_name: str | None
) -> tuple[Finding, ...]:
    """Findings for code by any detector's verdict, pickle by structure, config by name."""
    found: list[Finding] = []
    for kinds, code, what in (
        (EXECUTABLE_TYPES, "executable", "a native program"),
        (SCRIPT_TYPES, "script", "script code"),
        (ACTIVE_MARKUP_TYPES, "active_content", "browser markup"),
    ):
        hits = sorted(detected_types & kinds)
        if hits:
            found.append(Finding(code, f"the content is {what} ({', '.join(hits)})"))
    if _looks_like_pickle(path):
        found.append(Finding("pickle", "the content is a Python pickle"))
    base = os.path.basename((original_name or "").replace("\\", "/")).strip().lower()
    if base in SERVER_CONFIG_NAMES:
        found.append(Finding("server_config", f"{base} reconfigures web servers"))
    return tuple(found)


def _looks_like_pickle(path: str) -> bool:
    with open(path, "rb") as file:
        head = file.read(2)
        if head not in _PICKLE_HEAD:
            return False
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"."
