"""Repositories: the only code that speaks SQL. They take a session and return domain records.

One module per table family; import them from here.
"""

from __future__ import annotations

from filegate.db.repository.audit import AuditLog
from filegate.db.repository.files import Files
from filegate.db.repository.imports import Imports
from filegate.db.repository.jobs import Jobs
from filegate.db.repository.keys import ApiKeys
from filegate.db.repository.links import ShareLinks
from filegate.db.repository.signals import Processes, Signals
from filegate.db.repository.upload_tokens import UploadTokens
from filegate.db.repository.uploads import Uploads
from filegate.db.repository.webhooks import WebhookEndpoints, WebhookEvents

__all__ = [
    "ApiKeys",
    "AuditLog",
    "Files",
    "Imports",
    "Jobs",
    "Processes",
    "ShareLinks",
    "Signals",
    "UploadTokens",
    "Uploads",
    "WebhookEndpoints",
    "WebhookEvents",
]
