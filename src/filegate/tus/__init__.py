"""The tus 1.0.0 resumable-upload protocol: header rules and parsers, no I/O."""
