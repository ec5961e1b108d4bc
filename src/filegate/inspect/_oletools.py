"""oletools, imported only where Office files are inspected (the sandbox child).

With lxml, pyparsing and cryptography it costs ~15 MB of RSS, which the API process (it only
needs ``office.CODES``) must not pay. Imported from inside ``office``'s functions.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # oletools 0.60 builds its VBA grammar with pyparsing's deprecated camelCase API.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"oletools\.")
    from oletools import crypto, mraptor, msodde, olevba, rtfobj

__all__ = ["crypto", "mraptor", "msodde", "olevba", "rtfobj"]
