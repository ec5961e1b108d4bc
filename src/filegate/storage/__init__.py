"""Storage backends behind one protocol."""

from filegate.storage.base import ObjectWriter, Storage

__all__ = ["ObjectWriter", "Storage"]
