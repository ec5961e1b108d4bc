"""filegate: a self-hosted, hardened file-upload gateway."""

__version__ = "0.1.0.dev0"
