"""Storage backends behind one protocol."""

from filegate.storage.base import ObjectAppender, ObjectWriter, Storage

__all__ = ["ObjectAppender", "ObjectWriter", "Storage"]
