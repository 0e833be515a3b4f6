"""The ``lectern`` command: run the stack, ingest a book."""
